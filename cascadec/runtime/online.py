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

Live runs: a strategy's ``online: {warmup, keep}`` (the window is ``vote.window``) makes the
executor use :class:`OnlineMonitor` as its :class:`~cascadec.runtime.executor.SampleMonitor`.
A tier draws its warm-up traces first, on their own (``runtime.decide.round_size``), so the
threshold is known before a later trace starts and does not depend on the schedule; each later
trace streams its token confidences and is aborted through the backend as soon as the monitor
trips. :meth:`OnlineMonitor.settle` judges every finished sample too: one whose last tokens
came together with its end (a batch backend, a race with the abort) is recorded as aborted
all the same — so a run, its replay and a replay of any bank with the same samples decide alike.
The tokens recorded are those the engine really generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cascadec.runtime.backends.base import Sample
from cascadec.runtime.backends.streaming import ABORT
from cascadec.runtime.confidence import lowest_group, percentile
from cascadec.runtime.records import to_float32
from cascadec.spec.vote import DEFAULT_ONLINE_KEEP, DEFAULT_WARMUP

if TYPE_CHECKING:  # the executor and jobs import this module's users, not the other way round
    from cascadec.runtime.jobs import Ask, Job


def percent(share: float) -> float:
    """A spec's share (0.9) as the percent the threshold keeps (90.0, not 90.00000000000001)."""
    return round(100.0 * share, 9)


__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_WARMUP",
    "OnlineMonitor",
    "TraceMonitor",
    "replay_trace",
    "warmup_threshold",
]

DEFAULT_KEEP = percent(DEFAULT_ONLINE_KEEP)  # percent of warm-up traces above the threshold


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


class OnlineMonitor:
    """The executor's sample monitor for strategies with ``online`` (see the module docstring).

    Strategies without ``online`` are never touched, so one monitor serves a whole plan.
    """

    def __init__(self) -> None:
        self._thresholds: dict[tuple, float | None] = {}  # (job key, tier run) -> threshold
        self._traces: dict[tuple, TraceMonitor] = {}  # (job key, tier run, sample) -> monitor
        self.aborted = 0  # traces this monitor stopped (or settled as stopped)

    def _trace(self, job: Job, ask: Ask, index: int) -> tuple[tuple, TraceMonitor | None]:
        online = job.strategy.online
        sample = ask.first + index
        key = (job.key, len(job.runs), ask.tier, sample)
        if online is None or ask.temperature <= 0 or sample < online.warmup:
            return key, None
        trace = self._traces.get(key)
        if trace is None:
            threshold = self._threshold(job, online.warmup, online.keep)
            if threshold is None:
                return key, None
            trace = self._traces[key] = TraceMonitor(threshold, job.voting.window)
        return key, trace

    def _threshold(self, job: Job, warmup: int, keep: float) -> float | None:
        """The current tier's threshold, from its warm-up traces (None: they have no token records)."""
        key = (job.key, len(job.runs))
        if key not in self._thresholds:
            warm = job.runs[-1].samples[:warmup]
            confs = [[c for c in (s.token_confidence or ()) if c is not None] for s in warm]
            try:
                value = (
                    warmup_threshold(confs, job.voting.window, percent(keep)) if len(warm) == warmup else None
                )
            except ValueError:  # no warm-up trace has token confidences: nothing to judge by
                value = None
            self._thresholds[key] = value
        return self._thresholds[key]

    def should_abort(
        self, job: Job, ask: Ask, index: int, logprobs: Sequence[float], confidences: Sequence[float]
    ) -> bool:
        """Push the confidences not seen yet; True once the trace must stop."""
        _, trace = self._trace(job, ask, index)
        if trace is None:
            return False
        for c in confidences[trace.tokens :]:
            if trace.push(to_float32(float(c))):  # as the record (and a bank) will hold it
                break
        return trace.aborted

    def settle(self, job: Job, ask: Ask, index: int, sample: Sample) -> Sample:
        """The finished sample as recorded: aborted when the monitor stops it anywhere in its trace."""
        key, trace = self._trace(job, ask, index)
        self._traces.pop(key, None)
        if trace is None:
            return sample
        if sample.finish_reason != ABORT:
            for c in (sample.confidences or ())[trace.tokens :]:
                if trace.push(to_float32(float(c))):
                    break
            if not trace.aborted:
                return sample
            sample = replace(sample, finish_reason=ABORT)
        self.aborted += 1
        return sample
