"""The report's engine table shows what each profile added to the shared launch line (a variant's switch)."""

from analysis.render import launch_arguments


def test_variant_switch_and_dummy_args_are_shown_pythonpath_is_not():
    cmd = ["PYTHONPATH=/tree/python", "/py", "-m", "sglang.launch_server", "--model-path", "/m", "--host", "127.0.0.1",
           "--port", "20001", "--served-model-name", "gemma-4-31B-it", "--tp-size", "2",
           "--enforce-disable-flashinfer-allreduce-fusion", "--load-format", "dummy"]
    assert launch_arguments(cmd) == "--enforce-disable-flashinfer-allreduce-fusion --load-format dummy"


def test_env_vars_other_than_pythonpath_are_kept_and_json_values_survive():
    cmd = ["VLLM_SERVER_DEV_MODE=1", "/py", "-m", "vllm.entrypoints.cli.main", "serve", "/m", "--tensor-parallel-size", "1",
           "--limit-mm-per-prompt", '{"image": 0}', "--load-format", "dummy"]
    assert launch_arguments(cmd) == 'VLLM_SERVER_DEV_MODE=1 --limit-mm-per-prompt {"image": 0} --load-format dummy'


def test_baseline_without_extra_arguments_is_empty():
    cmd = ["/py", "-m", "sglang.launch_server", "--model-path", "/m", "--tp-size", "1"]
    assert launch_arguments(cmd) == ""
