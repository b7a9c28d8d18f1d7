"""SGLang 0.5.12's ServerArgs with the harness's MTP arguments (CPU: --device cpu is added only so that
__post_init__ does not stop at device detection). Usage: python sglang_server_args.py TARGET ASSISTANT [--no-trust]"""
import sys

from sglang.srt.server_args import prepare_server_args

T, A = sys.argv[1], sys.argv[2]
argv = ["--model-path", T, "--load-format", "dummy", "--device", "cpu",
        "--speculative-algorithm", "NEXTN", "--speculative-draft-model-path", A,
        "--speculative-num-steps", "3", "--speculative-num-draft-tokens", "4", "--speculative-eagle-topk", "1"]
if "--no-trust" not in sys.argv:
    argv.append("--trust-remote-code")
try:
    sa = prepare_server_args(argv)
    print("ServerArgs: speculative_algorithm", sa.speculative_algorithm, "max_running_requests", sa.max_running_requests,
          "disable_overlap_schedule", sa.disable_overlap_schedule, "context_length", sa.context_length,
          "trust_remote_code", sa.trust_remote_code)
except Exception as e:
    print("ServerArgs:", type(e).__name__, str(e).splitlines()[0][:200])
