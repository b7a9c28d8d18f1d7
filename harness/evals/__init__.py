"""Quality checks: MMLU-500 the way SGLang's run_eval scores it, greedy parity between two engines, and the
paired-statistics CI gate that compares two MMLU runs question by question.

The evaluations take a base URL and a served model name; how the server was started is not their concern
(``harness.cli.evals`` starts one through ``harness.server.managed_server`` when no URL is given).
"""
