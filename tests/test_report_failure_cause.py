"""A failed cell's report line names the error itself, taken from its log tail."""

from analysis.load import failure_cause


def test_last_error_line_is_the_cause():
    tail = """# harness: starting x
Traceback (most recent call last):
  File "/x/server_args.py", line 1169, in _handle_deprecated_args
    raise ValueError(
ValueError: SGLANG_GRPC_PORT (68831) must be between 1 and 65535
"""
    assert failure_cause(tail) == "ValueError: SGLANG_GRPC_PORT (68831) must be between 1 and 65535"
    assert failure_cause("usage: sglang serve [-h]\nsglang serve: error: unrecognized arguments: --nope\n") == \
        "sglang serve: error: unrecognized arguments: --nope"
    assert failure_cause("all fine\nshutting down\n") is None
    assert failure_cause(None) is None
