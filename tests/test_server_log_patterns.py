"""The launch lines the cell records keep (engine profiles' log_patterns), on excerpts of real SGLang logs."""


from harness.definitions import load_definitions
from harness.server_metrics import scan_log

# Lines as SGLang 0.5.12 + the patch stack printed them (31B TP=2, run 20261127T082546Z-31B-2112); the server_args
# dump is shortened to the fields around the ones read here, padded to the length of a real dump.
_ARGS = ("[2026-11-27 08:31:29] server_args=ServerArgs(model_path='/tmp/state/models/31B', " + "x='y', " * 400
         + "enable_flashinfer_allreduce_fusion={fusion}, enforce_disable_flashinfer_allreduce_fusion={disabled}, "
         + "swa_full_tokens_ratio=0.8, " + "z='w', " * 300 + ")")
NO_FUSION = "\n".join([
    "[2026-11-27 08:31:27] Auto-enabling FlashInfer AllReduce Fusion on SM90/SM10X for Gemma4ForConditionalGeneration",
    "[2026-11-27 08:31:27] FlashInfer allreduce fusion is forcibly disabled via --enforce-disable-flashinfer-allreduce-fusion.",
    _ARGS.format(fusion="False", disabled="True"),
    "[2026-11-27 08:31:50 TP0] Custom allreduce v2 initialized successfully (rank-check failed: tensor model parallel group is not initialized)",
])
FUSION = "\n".join([
    "[2026-11-27 08:26:01] Auto-enabling FlashInfer AllReduce Fusion on SM90/SM10X for Gemma4ForConditionalGeneration",
    _ARGS.format(fusion="True", disabled="False"),
    "[2026-11-27 08:26:27 TP0] FlashInfer workspace initialized for rank 0, world_size 2, backend trtllm",
])


def test_fusion_off_variant_records_the_disable_and_the_effective_value():
    eng = load_definitions().engine("sglang-patched-no-ar-fusion")
    _, lines = scan_log(eng, NO_FUSION)
    # the auto-enable line comes first in the log; the disable line and the effective value say what ran
    assert lines["ar_fusion_disabled"].startswith("[2026-11-27 08:31:27] FlashInfer allreduce fusion is forcibly disabled")
    assert "enable_flashinfer_allreduce_fusion=False" in lines["ar_fusion_effective"]
    assert "ar_fusion_workspace" not in lines
    assert lines["custom_ar"].endswith("(rank-check failed: tensor model parallel group is not initialized)")


def test_fusion_on_records_the_effective_value_and_workspace():
    eng = load_definitions().engine("sglang-patched")
    _, lines = scan_log(eng, FUSION)
    assert "enable_flashinfer_allreduce_fusion=True" in lines["ar_fusion_effective"]
    assert "ar_fusion_disabled" not in lines and "backend trtllm" in lines["ar_fusion_workspace"]


def test_long_lines_keep_the_match_not_the_head():
    eng = load_definitions().engine("sglang")
    _, lines = scan_log(eng, FUSION)
    kept = lines["swa_ratio"]  # matches only inside the long server_args dump
    assert "swa_full_tokens_ratio=0.8" in kept and kept.startswith("…") and kept.endswith("…")
    assert len(kept) < 250
    assert len(_ARGS) > 400
