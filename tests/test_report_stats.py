"""Statistics and roofline arithmetic behind the report (no rendering)."""

from __future__ import annotations

import math

import pytest

from analysis import stats
from analysis.roofline import (
    BF16_BYTES,
    RooflineUnavailable,
    active_params,
    bound_ms_per_token,
    datasheet_bandwidth,
)
from analysis.tables import fmt_delta, fmt_summary, mcnemar_exact_p, wilson

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("df", [1, 1.7, 2, 3, 4.26, 9, 30, 250])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(df, p):
    assert stats.t_ppf(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-9)


def test_summary_is_the_student_t_interval():
    xs = [110.0, 111.0, 112.0]
    s = stats.summarize(xs)
    lo, hi = scipy_stats.t.interval(0.95, df=2, loc=111.0, scale=scipy_stats.sem(xs))
    assert (s.n, s.mean) == (3, 111.0)
    assert s.lo == pytest.approx(lo, rel=1e-12) and s.hi == pytest.approx(hi, rel=1e-12)
    assert fmt_summary(s, "tok/s") == f"111.0 ± {hi - 111.0:.1f} (n=3)"


def test_single_repeat_has_no_interval_and_nan_is_ignored():
    s = stats.summarize([5.0, None, math.nan])
    assert (s.n, s.mean, s.lo, s.hi) == (1, 5.0, None, None)
    assert stats.summarize([None]) is None


def test_welch_delta_matches_scipy_and_marks_only_when_interval_excludes_zero():
    a, b = [110.0, 111.0, 112.0], [100.0, 101.0, 102.0, 104.0]
    d = stats.welch_delta(a, b)
    ci = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.lo == pytest.approx(ci.low, rel=1e-10) and d.hi == pytest.approx(ci.high, rel=1e-10)
    assert d.excludes_zero
    mean_b = sum(b) / len(b)
    assert d.rel == pytest.approx((111.0 - mean_b) / mean_b)
    assert fmt_delta(d).endswith("✱")
    same = stats.welch_delta([10.0, 12.0, 11.0], [11.0, 10.0, 12.0])
    assert not same.excludes_zero and "✱" not in fmt_delta(same)
    one = stats.welch_delta([10.0], [11.0, 12.0])
    assert one.lo is None and not one.excludes_zero and "no interval" in fmt_delta(one)


def test_wilson_and_mcnemar_match_scipy():
    lo, hi = wilson(31, 40)
    ref = scipy_stats.binomtest(31, 40).proportion_ci(0.95, method="wilson")
    assert lo == pytest.approx(ref.low, rel=1e-9) and hi == pytest.approx(ref.high, rel=1e-9)
    assert mcnemar_exact_p(7, 18) == pytest.approx(scipy_stats.binomtest(7, 25, 0.5).pvalue, rel=1e-12)
    assert mcnemar_exact_p(0, 0) == 1.0


# --------------------------------------------------------------------------------------------- roofline

TINY = {
    "hidden_size": 8,
    "num_hidden_layers": 3,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "num_global_key_value_heads": 1,
    "global_head_dim": 8,
    "attention_k_eq_v": True,
    "intermediate_size": 16,
    "use_double_wide_mlp": True,
    "num_kv_shared_layers": 1,
    "vocab_size": 32,
    "enable_moe_block": True,
    "num_experts": 4,
    "top_k_experts": 2,
    "moe_intermediate_size": 6,
    "hidden_size_per_layer_input": 2,
    "vocab_size_per_layer_input": 32,
}


def test_active_params_of_a_tiny_config_by_hand():
    ap = dict(active_params(TINY).components)
    # layers 0, 1 (sliding, own KV): q 8*2*4 + o 2*4*8 + k 8*1*4 + v 8*1*4 = 64 + 64 + 32 + 32 = 192 each
    # layer 2 (full, KV-shared: no k/v): q 8*2*8 + o 2*8*8 = 128 + 128 = 256
    assert ap["attention q/k/v/o"] == 192 + 192 + 256
    # MLP 3*8*16 = 384 on layers 0, 1; layer 2 is KV-shared with use_double_wide_mlp: 3*8*32 = 768
    assert ap["dense MLP gate/up/down"] == 384 + 384 + 768
    assert ap["MoE router"] == 3 * 8 * 4  # every layer reads hidden x num_experts
    assert ap["MoE experts (2 of 4)"] == 3 * 2 * (3 * 8 * 6)  # only top_k experts: 864
    assert ap["per-layer-embedding projections"] == 8 * 3 * 2 + 3 * (8 * 2 + 2 * 8)  # 48 + 96
    assert ap["embedding rows looked up"] == 8 + 3 * 2  # one embedding row + one per-layer-embedding row
    assert ap["lm_head (vocab x hidden)"] == 32 * 8
    total = 640 + 1536 + 96 + 864 + 144 + 14 + 256
    assert active_params(TINY).total == total == 3550
    assert active_params(TINY).total_bytes == 3550 * BF16_BYTES


def test_k_eq_v_drops_only_v_on_full_layers_with_their_own_kv():
    cfg = dict(TINY, num_kv_shared_layers=0, enable_moe_block=False, hidden_size_per_layer_input=0)
    ap = dict(active_params(cfg).components)
    # layer 2 now computes K (8*1*8 = 64) but no V (attention_k_eq_v): 128 + 128 + 64
    assert ap["attention q/k/v/o"] == 192 + 192 + 320
    assert ap["dense MLP gate/up/down"] == 3 * 384  # no KV-shared layer, so no double-wide MLP
    assert "MoE router" not in ap and "per-layer-embedding projections" not in ap
    no_keqv = dict(active_params(dict(cfg, attention_k_eq_v=False)).components)
    assert no_keqv["attention q/k/v/o"] == ap["attention q/k/v/o"] + 64


def test_bound_uses_the_datasheet_bandwidth():
    bw = datasheet_bandwidth("NVIDIA H100 80GB HBM3")
    assert bw.tb_per_s == 3.35 and "SXM" in bw.label
    assert datasheet_bandwidth("NVIDIA H200").tb_per_s == 4.8
    assert datasheet_bandwidth("NVIDIA H100 PCIe").tb_per_s == 2.0
    assert datasheet_bandwidth("Tesla T4") is None and datasheet_bandwidth(None) is None
    # 7100 bytes at 3.35e12 B/s = 2.1194e-9 s = 2.1194e-6 ms
    assert bound_ms_per_token(7100, bw) == pytest.approx(7100 / 3.35e12 * 1e3)
    # tensor parallel: each of the GPUs streams its shard at the same time
    assert bound_ms_per_token(7100, bw, 2) == pytest.approx(7100 / (2 * 3.35e12) * 1e3)


def test_missing_field_names_it():
    cfg = dict(TINY)
    del cfg["hidden_size"]
    with pytest.raises(RooflineUnavailable, match="hidden_size"):
        active_params(cfg)
