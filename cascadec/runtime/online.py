"""DeepConf-online: stop weak traces while they are generated, stop a tier once its vote is settled.

Why: a trace whose recent tokens are unsure rarely ends in a right answer, and every token it
still generates is paid for. DeepConf-online (arXiv 2508.15260, §3.2):

1. **warm-up**: the first ``warmup`` traces of a tier run to the end; the stop threshold is
   the ``100 - keep`` percentile of their lowest-group confidences (keep 90%: the 10th
   percentile — a later trace is stopped once it is worse than the worst tenth of the warm-up);
2. **abort**: every later trace is stopped as soon as its running group confidence (the mean of
   its last ``window`` token confidences) falls below the threshold; an aborted trace gives no
   answer and does not vote, but its tokens are counted — they were generated;
3. **consensus**: the tier stops sampling once its vote is settled under the strategy's
   early-stop rule (``weighted`` in DeepConf), see :mod:`cascadec.runtime.stopping`.

The policy is pure: :class:`TraceMonitor` takes token confidences as a backend streams them and
says when to abort; :func:`replay_trace` applies it to a recorded trace (a bank), which is
exactly what a live run with the same samples would have generated up to the abort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cascadec.runtime.confidence import lowest_group, percentile

DEFAULT_WARMUP = 4
DEFAULT_KEEP = 90.0  # percent of warm-up traces above the threshold


def warmup_threshold(
    warmup_confidences: Sequence[Sequence[float]], window: int, keep: float = DEFAULT_KEEP
) -> float:
    """The stop threshold: the ``100 - keep`` percentile of the warm-up traces' lowest-group confidence."""
    if not 0 < keep <= 100:
        raise ValueError(f"keep must be in (0, 100], got {keep}")
    lows = [g for g in (lowest_group(c, window) for c in warmup_confidences) if g is not None]
    if not lows:
        raise ValueError("no warm-up trace has token confidences")
    return percentile(lows, 100.0 - keep)


class TraceMonitor:
    """Watches one trace's token confidences as they stream in; says when to abort it."""

    def __init__(self, threshold: float, window: int):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.threshold = threshold
        self.window = window
        self._recent: list[float] = []
        self._sum = 0.0
        self.tokens = 0
        self.aborted = False

    def push(self, confidence: float) -> bool:
        """Take the next token's confidence; True once the trace must stop (it stays stopped)."""
        if self.aborted:
            return True
        self.tokens += 1
        if confidence != confidence or confidence in (float("inf"), float("-inf")):
            return False  # an engine's -inf/NaN says nothing about the trace (skipped, as offline)
        self._recent.append(confidence)
        self._sum += confidence
        if len(self._recent) > self.window:
            self._sum -= self._recent.pop(0)
        if len(self._recent) == self.window and self._sum / self.window < self.threshold:
            self.aborted = True
        return self.aborted


@dataclass(frozen=True)
class TraceOutcome:
    tokens: int  # tokens generated (all of them, or up to and including the abort)
    aborted: bool


def replay_trace(confidences: Sequence[float], threshold: float, window: int) -> TraceOutcome:
    """What online termination makes of a recorded trace: where it would have been stopped."""
    monitor = TraceMonitor(threshold, window)
    for c in confidences:
        if monitor.push(float(c)):
            return TraceOutcome(monitor.tokens, True)
    return TraceOutcome(len(confidences), False)
