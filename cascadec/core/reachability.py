"""What a condition can do at a tier of k samples: never fire, sometimes, or always.

The compiler uses this to prove thresholds reachable (agreement, margin and no_answer move
in steps of 1/k; answer entropy is at most ln k; a weighted agreement is any share in [0, 1]
but 0 or 1 at k = 1 — and a multiple of 1/k when the vote is a plain majority, see
``share_steps``) and tiers reachable, before any GPU runs.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

from cascadec.core.conditions import Compare, Condition, Number, Signal
from cascadec.core.signals import SIGNALS, value_range

Reach = Literal["never", "sometimes", "always"]


def _candidates(name: str, k: int, thresholds: set[float], share_steps: bool = False) -> list[float]:
    """Points that hit every region the thresholds cut the signal's range into."""
    lo, hi = value_range(name, k)
    step = SIGNALS[name].step
    if step == "exact":
        return [lo]
    if step == "share" and (k == 1 or share_steps):  # see reachability's share_steps
        step = "1/k"
    if step == "1/k":
        js = {0, k}
        for t in thresholds:
            x = t * k
            js.update(j for j in (math.floor(x + 1e-9), math.ceil(x - 1e-9)) if 0 <= j <= k)
        return sorted(j / k for j in js)
    inside = sorted({p for p in (lo, hi, *thresholds) if lo <= p <= hi and math.isfinite(p)})
    pts = set(inside)
    pts.update((a + b) / 2 for a, b in itertools.pairwise(inside))
    if hi == math.inf:
        pts.add((inside[-1] if inside else 0.0) + 1.0)
    if lo == -math.inf:
        pts.add((inside[0] if inside else 0.0) - 1.0)
    if step == "int":
        pts = {v for p in pts for v in (math.floor(p), math.ceil(p)) if lo <= v <= hi}
    return sorted(pts)


def reachability(cond: Condition, k: int, *, share_steps: bool = False, max_points: int = 50_000) -> Reach:
    """Whether ``cond`` can hold at a tier of ``k`` samples: never, sometimes or always.

    Exact for comparisons of signals with numbers (agreement moves in steps of 1/k, entropy
    is at most ln k); signals are treated as independent, so "never" and "always" are proofs.
    ``share_steps``: the weighted agreement (and so ``hybrid``) moves in steps of 1/k, as under
    a majority vote, where it *is* the agreement; otherwise it is any share in [0, 1] (but 0 or
    1 at k = 1: one sample holds all of the weight or gives no answer).
    """
    names = sorted(cond.signals())
    thresholds: dict[str, set[float]] = {n: set() for n in names}
    for node in cond.walk():
        if isinstance(node, Compare):
            for a, b in ((node.left, node.right), (node.right, node.left)):
                if isinstance(a, Signal) and isinstance(b, Number) and a.name in thresholds:
                    thresholds[a.name].add(b.value)
    grids = [_candidates(n, k, thresholds[n], share_steps) for n in names]
    if math.prod(len(g) for g in grids) > max_points:
        return "sometimes"
    seen = set()
    for values in itertools.product(*grids):
        seen.add(cond.evaluate(dict(zip(names, values, strict=True))))
        if len(seen) == 2:
            return "sometimes"
    return "always" if seen == {True} else "never"


def threshold_reachable(cond: Condition, k: int, *, share_steps: bool = False) -> bool:
    """True when ``cond`` can fire for some outcome of k samples (the compiler's E400 check)."""
    return reachability(cond, k, share_steps=share_steps) != "never"
