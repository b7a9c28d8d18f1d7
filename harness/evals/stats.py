"""Statistics for accuracy runs: Wilson intervals, the exact McNemar test, a paired bootstrap.

Two engines answer the *same* questions, so they are compared question by question.  Only the discordant
questions carry information about the difference: ``b`` = reference right and candidate wrong, ``c`` = reference
wrong and candidate right.  The exact McNemar test is a binomial test of ``b`` successes in ``b + c`` trials
with p = 1/2 (McNemar 1947; Dietterich 1998).  The paired bootstrap resamples question indices with replacement
and recomputes the difference of accuracies (Koehn 2004).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np


def wilson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (as fractions)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside 0..n={n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def binom_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exact (integer arithmetic, one rounding)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``binomtest(b, b + c, 0.5)`` (two-sided)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binom_cdf_half(min(b, c), n))


def mcnemar_exact_one_sided(b: int, c: int) -> float:
    """One-sided exact p-value for "the candidate is worse": P(X >= b), X ~ Binomial(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    return 1.0 - binom_cdf_half(b - 1, n)


@dataclass(frozen=True)
class Paired:
    """Counts of a question-by-question comparison of two runs (ref, cand)."""

    n: int
    ref_correct: int
    cand_correct: int
    both: int
    neither: int
    b: int  # reference right, candidate wrong
    c: int  # reference wrong, candidate right

    @property
    def ref_score(self) -> float:
        return self.ref_correct / self.n

    @property
    def cand_score(self) -> float:
        return self.cand_correct / self.n

    @property
    def delta(self) -> float:
        """Candidate minus reference, as a fraction."""
        return (self.c - self.b) / self.n

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(ref_score=self.ref_score, cand_score=self.cand_score, delta=self.delta)
        return d


def paired_counts(ref: Sequence[bool], cand: Sequence[bool]) -> Paired:
    if len(ref) != len(cand):
        raise ValueError("paired runs must have the same number of questions")
    if not ref:
        raise ValueError("no questions to compare")
    b = sum(1 for r, x in zip(ref, cand) if r and not x)
    c = sum(1 for r, x in zip(ref, cand) if x and not r)
    both = sum(1 for r, x in zip(ref, cand) if r and x)
    return Paired(n=len(ref), ref_correct=sum(map(bool, ref)), cand_correct=sum(map(bool, cand)), both=both,
                  neither=len(ref) - b - c - both, b=b, c=c)


@dataclass(frozen=True)
class Bootstrap:
    """Paired-bootstrap distribution of delta = candidate - reference (fractions)."""

    resamples: int
    seed: int
    ci_low: float  # two-sided (confidence) CI of delta
    ci_high: float
    confidence: float
    drop_upper: float  # one-sided (1 - alpha) upper bound of reference - candidate
    drop_lower: float  # one-sided (1 - alpha) lower bound of reference - candidate
    alpha: float


def paired_bootstrap(
    ref: Sequence[bool],
    cand: Sequence[bool],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = 0.05,
    chunk: int = 1000,
) -> Bootstrap:
    """Resample question indices with replacement; percentile intervals of the accuracy difference."""
    r = np.asarray(ref, dtype=np.int8)
    x = np.asarray(cand, dtype=np.int8)
    if r.shape != x.shape or r.ndim != 1 or r.size == 0:
        raise ValueError("paired runs must be non-empty and of equal length")
    d = (x - r).astype(np.float64)  # per-question candidate - reference in {-1, 0, 1}
    n = d.size
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(m, n))
        deltas[start:start + m] = d[idx].mean(axis=1)
    lo, hi = np.quantile(deltas, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    drops = -deltas
    drop_upper = float(np.quantile(drops, 1 - alpha))
    drop_lower = float(np.quantile(drops, alpha))
    return Bootstrap(resamples=resamples, seed=seed, ci_low=float(lo), ci_high=float(hi), confidence=confidence,
                     drop_upper=drop_upper, drop_lower=drop_lower, alpha=alpha)
