"""Wilson intervals, the exact McNemar test and the paired bootstrap, checked against scipy on known tables."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from harness.evals.stats import (
    binom_cdf_half,
    mcnemar_exact,
    mcnemar_exact_one_sided,
    paired_bootstrap,
    paired_counts,
    wilson_ci,
)


@pytest.mark.parametrize("k,n", [(354, 500), (355, 500), (0, 500), (500, 500), (7, 20), (1, 3), (41, 60)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_ci(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-9)
    assert hi == pytest.approx(ci.high, abs=1e-9)


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (13, 11), (18, 7), (17, 8), (25, 15), (3, 30), (40, 40), (120, 80),
                                 (0, 9)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    if b + c == 0:
        assert mcnemar_exact(b, c) == 1.0
        return
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-15)
    assert mcnemar_exact_one_sided(b, c) == pytest.approx(
        binomtest(b, b + c, 0.5, alternative="greater").pvalue, rel=1e-9, abs=1e-15)


def test_anchor_thresholds():
    """anchors.md §5: with 25 discordant questions p < 0.05 needs an 18:7 split."""
    assert mcnemar_exact(18, 7) < 0.05
    assert mcnemar_exact(17, 8) > 0.05


def test_binom_cdf_edges():
    assert binom_cdf_half(-1, 10) == 0.0
    assert binom_cdf_half(10, 10) == 1.0
    assert binom_cdf_half(0, 1) == 0.5


def test_paired_counts():
    ref = [1, 1, 0, 0, 1, 1]
    cand = [1, 0, 1, 0, 0, 1]
    pc = paired_counts(ref, cand)
    assert (pc.both, pc.b, pc.c, pc.neither) == (2, 2, 1, 1)
    assert pc.delta == pytest.approx(-1 / 6)
    with pytest.raises(ValueError):
        paired_counts([1], [1, 0])


def test_bootstrap_is_seeded_and_sane():
    ref = [True] * 350 + [False] * 150
    cand = list(ref)
    for i in range(20):  # candidate loses 20 questions, wins 5
        cand[i] = False
    for i in range(350, 355):
        cand[i] = True
    a = paired_bootstrap(ref, cand, resamples=4000, seed=0)
    b = paired_bootstrap(ref, cand, resamples=4000, seed=0)
    assert a == b
    assert a.ci_low < -15 / 500 < a.ci_high
    # normal approximation of the paired difference: sd = sqrt((b + c) - (b - c)^2 / n) / n
    sd = ((25 - 15 ** 2 / 500) ** 0.5) / 500
    assert a.drop_upper == pytest.approx(15 / 500 + 1.645 * sd, abs=0.004)
    assert a.drop_lower == pytest.approx(15 / 500 - 1.645 * sd, abs=0.004)
    assert a.drop_lower < 15 / 500 < a.drop_upper


def test_bootstrap_identical_runs_have_zero_width():
    r = [True, False] * 50
    bt = paired_bootstrap(r, r, resamples=500)
    assert (bt.ci_low, bt.ci_high, bt.drop_upper, bt.drop_lower) == (0.0, 0.0, 0.0, 0.0)
