"""Summary statistics for repeated benchmark cells: means with Student-t intervals and Welch deltas.

Only the standard library is used (scipy is a test-only dependency): the Student-t quantile is computed from
the regularised incomplete beta function (continued fraction, Numerical Recipes 6.4) and inverted by a
safeguarded Newton iteration, which is exact to well below the printed precision and deterministic.

Engine comparisons use **Welch's t-interval on the difference of means** (unequal variances,
Welch-Satterthwaite degrees of freedom). The report shows the difference relative to the reference mean
(``(mean_a - mean_b) / mean_b``); the interval is the Welch interval divided by the same reference mean, so
"the interval excludes zero" is exactly Welch's two-sided test at the 5 % level.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

CONFIDENCE = 0.95


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    bt = math.exp(lbt)
    if x < (a + 1.0) / (a + b + 2.0):
        return bt * _betacf(a, b, x) / a
    return 1.0 - bt * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student-t cumulative distribution function with ``df`` (possibly fractional) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


def _t_pdf(t: float, df: float) -> float:
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(logc - (df + 1) / 2 * math.log1p(t * t / df))


def t_ppf(p: float, df: float) -> float:
    """Student-t quantile: the t with ``t_cdf(t, df) == p`` (safeguarded Newton inside a bisection bracket)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    t = 0.5 * (lo + hi)
    for _ in range(200):
        g = t_cdf(t, df) - p
        if g == 0.0:
            return t
        if g < 0:
            lo = t
        else:
            hi = t
        step = g / _t_pdf(t, df)
        nt = t - step
        if not lo < nt < hi:
            nt = 0.5 * (lo + hi)
        if abs(nt - t) <= 1e-15 * max(1.0, abs(t)) or hi - lo <= 1e-15 * max(1.0, hi):
            return nt
        t = nt
    return t


@functools.lru_cache(maxsize=4096)
def t_critical(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided critical value: half-width = t_critical * standard error."""
    return t_ppf(0.5 + confidence / 2.0, df)


@dataclass(frozen=True)
class Summary:
    """Mean of ``n`` repeats with a two-sided Student-t interval (``None`` bounds when n < 2)."""

    n: int
    mean: float
    sd: float | None
    lo: float | None
    hi: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.hi is None else self.hi - self.mean


def _clean(values: Iterable[float | None]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isnan(f):
            continue
        out.append(f)
    return out


def summarize(values: Iterable[float | None], confidence: float = CONFIDENCE) -> Summary | None:
    """Mean and t-interval of the non-missing values; ``None`` when there are none."""
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return None
    mean = math.fsum(xs) / n
    if n < 2:
        return Summary(n=n, mean=mean, sd=None, lo=None, hi=None)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    sd = math.sqrt(var)
    half = t_critical(n - 1, confidence) * sd / math.sqrt(n)
    return Summary(n=n, mean=mean, sd=sd, lo=mean - half, hi=mean + half)


@dataclass(frozen=True)
class Delta:
    """Difference of means ``a - b`` with Welch's interval, and the same relative to ``mean_b``.

    ``lo``/``hi`` are ``None`` when either side has fewer than two repeats or both have zero variance (no
    interval, hence no significance mark).
    """

    n_a: int
    n_b: int
    diff: float
    lo: float | None
    hi: float | None
    df: float | None
    rel: float | None  # diff / mean_b
    rel_lo: float | None
    rel_hi: float | None

    @property
    def excludes_zero(self) -> bool:
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)


def welch_delta(a: Sequence[float | None], b: Sequence[float | None], confidence: float = CONFIDENCE) -> Delta | None:
    """Welch's t-interval for mean(a) - mean(b); ``None`` when either side has no values."""
    sa, sb = summarize(a, confidence), summarize(b, confidence)
    if sa is None or sb is None:
        return None
    diff = sa.mean - sb.mean
    lo = hi = df = None
    if sa.sd is not None and sb.sd is not None:
        va, vb = sa.sd**2 / sa.n, sb.sd**2 / sb.n
        se2 = va + vb
        if se2 > 0:
            df = se2**2 / ((va**2 / (sa.n - 1) if va else 0.0) + (vb**2 / (sb.n - 1) if vb else 0.0))
            half = t_critical(df, confidence) * math.sqrt(se2)
            lo, hi = diff - half, diff + half
    rel = rel_lo = rel_hi = None
    if sb.mean != 0:
        ref = abs(sb.mean)
        rel = diff / ref
        if lo is not None and hi is not None:
            rel_lo, rel_hi = lo / ref, hi / ref
    return Delta(n_a=sa.n, n_b=sb.n, diff=diff, lo=lo, hi=hi, df=df, rel=rel, rel_lo=rel_lo, rel_hi=rel_hi)
