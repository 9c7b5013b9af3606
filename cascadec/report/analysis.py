"""The measurements a report shows: the Pareto frontier, reliability of confidence signals,
paired significance between strategies. Pure numpy; the tests come from :mod:`cascadec.stats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cascadec.core.signals import CONFIDENCE_SCALES, Scale
from cascadec.stats import bootstrap_interval, mcnemar_exact

BOOTSTRAP_SEED = 0  # one seed: the same inputs give the same report, byte for byte
BOOTSTRAP_DRAWS = 2000
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class Point:
    name: str
    cost: float  # per problem, or ratio to the reference
    accuracy: float
    group: str  # strategy, greedy, vote, oracle
    accuracy_ci: tuple[float, float] | None = None  # 95%, a fraction (Clopper–Pearson)
    cost_ci: tuple[float, float] | None = None  # 95%, in the unit of ``cost`` (bootstrap)


REACHABLE = ("strategy", "greedy", "vote")  # the oracle router needs the gold answer: no strategy reaches it


def pareto_frontier(points: list[Point]) -> list[Point]:
    """Points no other point beats on both axes (cheaper or equal and at least as accurate,
    one strictly), ordered by cost. The report passes the reachable points only (not the oracle)."""
    pts = sorted(
        (p for p in points if not math.isnan(p.cost) and not math.isnan(p.accuracy)),
        key=lambda p: (p.cost, -p.accuracy),
    )
    out: list[Point] = []
    best = -math.inf
    for p in pts:
        if p.accuracy > best:
            out.append(p)
            best = p.accuracy
    return out


def accuracy_interval(correct, level: float = 0.95) -> tuple[float, float] | None:
    """Exact (Clopper–Pearson) interval of an accuracy from per-problem outcomes (NaN: no gold,
    left out) or from ``(right, graded)`` counts; None when nothing is graded."""
    if isinstance(correct, tuple):
        right, n = correct
    else:
        c = np.asarray(correct, dtype=float)
        c = c[~np.isnan(c)]
        right, n = int(c.sum()), int(c.size)
    if n <= 0:
        return None
    delta = (1 - level) / 2
    hi = _cp_upper(right, n, delta)
    lo = 1.0 - _cp_upper(n - right, n, delta)
    return (max(0.0, lo), min(1.0, hi))


def _cp_upper(x: int, n: int, delta: float) -> float:
    """``cascadec.stats.clopper_pearson_upper``, its binomial coefficients computed once and the
    bisection's CDFs in numpy (a bank's thousands of problems: milliseconds, not a second)."""
    if n == 0 or x >= n:
        return 1.0
    i = np.arange(x + 1, dtype=float)
    log_choose = np.array(
        [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in range(x + 1)]
    )
    lo, hi = x / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        logs = log_choose + i * math.log(mid) + (n - i) * math.log1p(-mid)  # 0 < mid < 1
        cdf = min(1.0, float(np.exp(logs.max()) * np.exp(logs - logs.max()).sum()))
        if cdf > delta:
            lo = mid
        else:
            hi = mid
    return hi


def ratio_interval(
    cost: np.ndarray, ref: np.ndarray, *, level: float = 0.95, draws: int = BOOTSTRAP_DRAWS
) -> tuple[float, float] | None:
    """Seeded paired-bootstrap interval of sum(cost) / sum(ref) over the same problems (the cost
    ratio); without ``ref`` (None) of the mean cost. None when there is nothing to resample."""
    c = np.asarray(cost, dtype=float)
    r = None if ref is None else np.asarray(ref, dtype=float)
    n = c.size
    if n < 2 or (r is not None and (r.size != n or r.sum() <= 0)):
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    stats = []
    for start in range(0, draws, 250):  # blocks: memory stays O(250 n)
        idx = rng.integers(0, n, size=(min(250, draws - start), n))
        num = c[idx].sum(axis=1)
        stats.append(num / r[idx].sum(axis=1) if r is not None else num / n)
    lo, hi = np.nanquantile(np.concatenate(stats), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Flow:
    """How one strategy's problems went through its tiers. ``correct[t]``/``graded[t]``: of the
    problems answered at tier t, how many were right and how many had a gold answer (None:
    per-problem outcomes unknown)."""

    name: str
    problems: int
    reached: list[int]
    answered: list[int]
    correct: list[int] | None = None
    graded: list[int] | None = None

    @property
    def passed_on(self) -> list[int]:
        return [max(n - a, 0) for n, a in zip(self.reached, self.answered, strict=True)]

    @property
    def started(self) -> list[int]:
        """Problems whose first tier this is (a routed start skips the tiers before it)."""
        passed = self.passed_on
        return [self.reached[0]] + [
            max(self.reached[t] - passed[t - 1], 0) for t in range(1, len(self.reached))
        ]

    def accuracy(self, tier: int) -> float | None:
        if self.correct is None or self.graded is None or not self.graded[tier]:
            return None
        return self.correct[tier] / self.graded[tier]


def flow_of(name: str, problems: int, reached, answered, last_tier=None, correct=None) -> Flow:
    """A Flow; with per-problem last tiers and outcomes, the accuracy of each tier's answers."""
    reached, answered = [int(x) for x in reached], [int(x) for x in answered]
    if last_tier is None or correct is None or len(last_tier) != len(correct):
        return Flow(name, problems, reached, answered)
    tiers = np.asarray(last_tier, dtype=float)
    c = np.asarray(correct, dtype=float)
    right, graded = [], []
    for t in range(len(reached)):
        here = (tiers == t) & ~np.isnan(c)
        right.append(int(c[here].sum()))
        graded.append(int(here.sum()))
    return Flow(name, problems, reached, answered, right, graded)


@dataclass(frozen=True)
class Reliability:
    """A binned reliability curve of one signal of one source."""

    source: str
    signal: str
    scale: Scale
    n: int
    centers: np.ndarray  # mean confidence (or signal value) per non-empty bin
    accuracy: np.ndarray  # empirical accuracy per non-empty bin
    counts: np.ndarray
    ece: float | None  # expected calibration error; None when the signal is not a probability


def reliability(
    source: str, signal: str, values: np.ndarray, correct: np.ndarray, bins: int = RELIABILITY_BINS
):
    """Binned confidence against empirical accuracy; None when fewer than two usable pairs or one value."""
    scale = CONFIDENCE_SCALES[signal]
    v = np.asarray(values, dtype=float)
    c = np.asarray(correct, dtype=float)
    keep = ~np.isnan(v) & ~np.isnan(c) & np.isfinite(v)
    v, c = v[keep], c[keep]
    if v.size < 2 or np.unique(v).size < 2:  # a constant signal (a greedy answer's agreement) ranks nothing
        return None
    if scale is Scale.EXP:
        v = np.exp(v)
    if scale in (Scale.PROBABILITY, Scale.EXP):
        v = np.clip(v, 0.0, 1.0)
        idx = np.minimum((v * bins).astype(int), bins - 1)
    else:  # quantile bins of an unbounded signal
        edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)))
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, max(len(edges) - 2, 0))
    counts = np.bincount(idx, minlength=bins)
    used = np.flatnonzero(counts)
    centers = np.array([v[idx == b].mean() for b in used])
    acc = np.array([c[idx == b].mean() for b in used])
    n = counts[used]
    ece = (
        float(np.sum(n * np.abs(acc - centers)) / v.size) if scale in (Scale.PROBABILITY, Scale.EXP) else None
    )
    return Reliability(source, signal, scale, int(v.size), centers, acc, n, ece)


def paired(name_a: str, a_ids, a_correct, name_b: str, b_ids, b_correct) -> dict | None:
    """Exact McNemar and a seeded paired-bootstrap 95% CI of accuracy(a) − accuracy(b) on the
    problems both answered with a gold answer; None when they share none."""
    a = {i: x for i, x in zip(a_ids, a_correct, strict=True) if not math.isnan(x)}
    b = {i: x for i, x in zip(b_ids, b_correct, strict=True) if not math.isnan(x)}
    common = sorted(set(a) & set(b))
    if not common:
        return None
    pairs = np.array([[a[i], b[i]] for i in common], dtype=float)
    test = mcnemar_exact(pairs[:, 0] == 1, pairs[:, 1] == 1)
    lo, hi = bootstrap_interval(
        pairs, lambda s: s[:, 0].mean() - s[:, 1].mean(), draws=BOOTSTRAP_DRAWS, seed=BOOTSTRAP_SEED
    )
    return {
        "a": name_a,
        "b": name_b,
        "problems": len(common),
        "accuracy_a": float(pairs[:, 0].mean()),
        "accuracy_b": float(pairs[:, 1].mean()),
        "diff": float(pairs[:, 0].mean() - pairs[:, 1].mean()),
        "ci95": (lo, hi),
        "only_a": test["only_a"],
        "only_b": test["only_b"],
        "p_value": test["p_value"],
    }
