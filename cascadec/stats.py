"""Small exact statistics: binomial tails, Clopper–Pearson and empirical-Bernstein bounds, paired
bootstrap, McNemar.

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


def empirical_bernstein_upper(x: np.ndarray, delta: float) -> float:
    """(1 − delta) upper confidence bound of E[X] for X in [0, 1] (Maurer & Pontil 2009, Thm 4):
    mean + sqrt(2 V ln(2/δ) / n) + 7 ln(2/δ) / (3 (n − 1)), V the unbiased sample variance.
    Distribution-free, and tight when the variance is small (costs that rarely reach their cap)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 2:
        return 1.0
    log = math.log(2 / delta)
    return float(x.mean() + math.sqrt(2 * x.var(ddof=1) * log / n) + 7 * log / (3 * (n - 1)))


def _cost_ucb(
    c: np.ndarray, ref: np.ndarray, cost_max: float, ref_max: float, delta: float, r: float
) -> float:
    """f(r): the empirical-Bernstein upper bound of E[C − r·R] (Z_r lies in [−r·ref_max, cost_max])."""
    width = cost_max + r * ref_max
    return width * empirical_bernstein_upper((c - r * ref + r * ref_max) / width, delta) - r * ref_max


def _cost_falls(ref: np.ndarray, ref_max: float, delta: float) -> bool:
    """Whether f's slope at infinity is negative (enough problems for any ratio bound at all)."""
    n = ref.size
    if n < 2 or ref_max <= 0 or ref.sum() <= 0:
        return False
    log = math.log(2 / delta)
    return -ref.mean() + math.sqrt(2 * log / n) * ref.std(ddof=1) + 7 * ref_max * log / (3 * (n - 1)) < 0


def cost_ratio_test(
    cost: np.ndarray, ref_cost: np.ndarray, cost_max: float, ref_max: float, delta: float, ratio: float
) -> bool:
    """Level-delta test of H0 "E[C] / E[R] > ratio": True (rejected, certified) iff
    ``cost_ratio_upper(...) <= ratio``, computed with one bound instead of a bisection."""
    c, r_ = np.asarray(cost, dtype=float), np.asarray(ref_cost, dtype=float)
    if cost_max <= 0:
        return True
    return _cost_falls(r_, ref_max, delta) and _cost_ucb(c, r_, cost_max, ref_max, delta, ratio) <= 0


def cost_ratio_upper(
    cost: np.ndarray, ref_cost: np.ndarray, cost_max: float, ref_max: float, delta: float
) -> float:
    """(1 − delta) upper confidence bound of the mean-cost ratio ρ = E[C] / E[R] of paired,
    bounded per-problem costs (0 ≤ C ≤ cost_max, 0 ≤ R ≤ ref_max: each plan's worst case).

    For a ratio r, Z_r = C − r·R lies in [−r·ref_max, cost_max]; f(r) = the empirical-Bernstein
    upper bound of E[Z_r] is convex in r. The bound is r* = min{r : f(r) ≤ 0}. It is valid when f
    falls for ever after r* (its slope at infinity is negative): then ρ > r* implies f(ρ) ≤ 0, an
    event of probability ≤ delta because E[Z_ρ] = 0. Otherwise (too few problems) it is +inf."""
    c, r_ = np.asarray(cost, dtype=float), np.asarray(ref_cost, dtype=float)
    if cost_max <= 0:
        return 0.0
    if not _cost_falls(r_, ref_max, delta):
        return math.inf

    def f(r: float) -> float:
        return _cost_ucb(c, r_, cost_max, ref_max, delta, r)

    if f(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, max(1.0, c.mean() / r_.mean())
    while f(hi) > 0:
        lo, hi = hi, hi * 2
        if hi > 1e12:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) <= 0:
            hi = mid
        else:
            lo = mid
    return hi
