"""Model-internal confidence of a trace, from its per-token top-L logprobs (DeepConf, arXiv 2508.15260).

Why: a vote counts a confused trace like a careful one. The token-level numbers below tell
them apart, and every one is a pure function of a sample's stored token records, so a bank
recomputes them exactly (the simulator, calibration and replay call these same functions).

Definitions (higher = more confident; a token's confidence is >= 0):

- token confidence ``C_i = -mean(top-L logprobs at position i)`` (:func:`token_confidence`);
- group confidence: mean ``C`` over a sliding window of ``window`` tokens, one group per
  position from ``window - 1`` on (a trace shorter than the window is one group);
- ``lowest_group``: the smallest group confidence — a trace is as good as its worst stretch;
- ``bottom10``: mean of the lowest 10% of the groups (at least one group);
- ``tail``: mean ``C`` over the last ``tail`` tokens (where the answer is written);
- ``mean``: mean ``C`` over the whole trace.

A trace without token records has no confidence (``None``); non-finite logprobs are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cascadec.spec.vote import DEFAULT_GROUP_WINDOW as DEFAULT_WINDOW
from cascadec.spec.vote import DEFAULT_TAIL, ConfidenceMetric

BOTTOM_SHARE = 0.1  # "bottom 10%" of the groups


def token_confidence(top_logprobs: Iterable[float | None], top_l: int | None = None) -> float:
    """``-mean`` of one position's finite top-L logprobs; 0.0 when none is finite.

    Engines add the sampled token to the top L when it is not among them: ``top_l`` keeps
    only the L largest, so every backend measures the same thing.
    """
    values = sorted((float(v) for v in top_logprobs if v is not None and math.isfinite(v)), reverse=True)
    if top_l is not None:
        values = values[:top_l]
    return -sum(values) / len(values) if values else 0.0


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def group_confidences(confidences: Sequence[float], window: int = DEFAULT_WINDOW) -> list[float]:
    """Mean token confidence of every full sliding window (one group if the trace is shorter)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    c = _finite(confidences)
    if not c:
        return []
    if len(c) <= window:
        return [sum(c) / len(c)]
    groups, total = [], sum(c[:window])
    groups.append(total / window)
    for i in range(window, len(c)):
        total += c[i] - c[i - window]
        groups.append(total / window)
    return groups


def lowest_group(confidences: Sequence[float], window: int = DEFAULT_WINDOW) -> float | None:
    groups = group_confidences(confidences, window)
    return min(groups) if groups else None


def bottom_groups(
    confidences: Sequence[float], window: int = DEFAULT_WINDOW, share: float = BOTTOM_SHARE
) -> float | None:
    """Mean of the lowest ``share`` of the groups (rounded up, at least one)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    groups = sorted(group_confidences(confidences, window))
    if not groups:
        return None
    n = max(1, math.ceil(share * len(groups) - 1e-9))
    return sum(groups[:n]) / n


def tail_confidence(confidences: Sequence[float], tail: int = DEFAULT_TAIL) -> float | None:
    if tail < 1:
        raise ValueError(f"tail must be >= 1, got {tail}")
    c = _finite(confidences)
    return sum(c[-tail:]) / len(c[-tail:]) if c else None


@dataclass(frozen=True)
class TraceConfidence:
    """Every trace-level confidence of one sample."""

    mean: float
    lowest_group: float
    bottom10: float
    tail: float

    def get(self, metric: ConfidenceMetric | str) -> float:
        return float(getattr(self, ConfidenceMetric(metric).value))


def trace_confidence(
    confidences: Sequence[float] | None, window: int = DEFAULT_WINDOW, tail: int = DEFAULT_TAIL
) -> TraceConfidence | None:
    """The trace's confidences from its token confidences (None without token records)."""
    if not confidences:
        return None
    c = _finite(confidences)
    if not c:
        return None
    return TraceConfidence(
        mean=sum(c) / len(c),
        lowest_group=lowest_group(c, window),  # type: ignore[arg-type]
        bottom10=bottom_groups(c, window),  # type: ignore[arg-type]
        tail=tail_confidence(c, tail),  # type: ignore[arg-type]
    )


def running_group_confidence(confidences: Sequence[float], window: int = DEFAULT_WINDOW) -> float | None:
    """The current group confidence of a trace being generated: mean of its last ``window`` tokens.

    DeepConf-online aborts a trace as soon as this drops below the warm-up threshold; only
    a full window is judged (a trace's first tokens are noisy), so ``None`` before that.
    """
    c = _finite(confidences)
    if len(c) < window:
        return None
    return sum(c[-window:]) / window


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation (numpy's default), pure Python."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
