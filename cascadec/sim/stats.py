"""Small exact statistics: binomial tails, Clopper–Pearson bounds, paired bootstrap, McNemar.

Pure Python and numpy (no scipy): the binomial CDF is summed in log space, so it is exact to
floating point for the sizes a bank holds.
"""

from __future__ import annotations

import math

import numpy as np


def binom_cdf(x: int, n: int, p: float) -> float:
    """P(Bin(n, p) <= x)."""
    if x < 0:
        return 0.0
    if x >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(x + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def binom_tail_pvalue(losses: int, n: int, alpha: float) -> float:
    """p-value of H0 "the loss rate exceeds alpha" after ``losses`` in ``n`` (Learn-then-Test's
    binomial tail bound: small when far fewer losses were seen than alpha·n)."""
    return binom_cdf(losses, n, alpha)


def clopper_pearson_upper(losses: int, n: int, delta: float) -> float:
    """The (1 − delta) upper confidence bound of a binomial rate."""
    if n == 0:
        return 1.0
    if losses >= n:
        return 1.0
    lo, hi = losses / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if binom_cdf(losses, n, mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def bootstrap_interval(values: np.ndarray, stat, *, level: float = 0.95, draws: int = 2000, seed: int = 0):
    """Percentile bootstrap interval of ``stat(sample)`` over rows of ``values`` (paired: one
    resampled index set for every column)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    idx = rng.integers(0, n, size=(draws, n))
    stats = np.array([stat(values[i]) for i in idx])
    lo, hi = np.nanquantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def mcnemar_exact(a_right: np.ndarray, b_right: np.ndarray) -> dict:
    """Exact McNemar test of two strategies on the same problems (two-sided binomial on discordant pairs)."""
    a = np.asarray(a_right, bool)
    b = np.asarray(b_right, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2 * binom_cdf(min(only_a, only_b), n, 0.5))
    return {"only_a": only_a, "only_b": only_b, "p_value": p}
