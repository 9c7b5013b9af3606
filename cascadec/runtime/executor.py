"""The scheduler: run every job of a plan, one model at a time, continuously.

Scheduling by model, not by problem: while jobs are pending, take the cheapest model that
some job waits for (cost = the model's ``params``), load it, and serve *every* ask for it —
from every strategy, first rounds, later rounds, retries — through the streaming backend
protocol (:mod:`cascadec.runtime.backends.streaming`). Only when no job waits for that model
does the next one load. Tiers grow in cost along a cascade, so each model is loaded once per
run (a cascade that gets cheaper would reload, and the stats would show it).

Two schedules, the same samples and the same results:

- ``continuous`` (default): a job's next round, retry or exploration on the loaded model is
  submitted as soon as its previous samples are in, while the others still generate — no
  batch barrier, so one slow sample holds back only its own problem;
- ``barrier``: submit every waiting ask (up to ``batch_size``), wait until all are in, decide,
  repeat — what the batch-only engines do anyway; kept so benchmarks can compare.

At most ``batch_size`` requests are in flight. Journaled samples (resume) are served from the
run store without loading anything: a model is loaded only when a request really has to be
generated.

Online abort hook: give the executor a :class:`SampleMonitor` and every request streams its
chosen-token logprobs and token confidences while it runs; ``should_abort(job, ask, index,
logprobs, confidences)`` is called with sample ``index``'s tokens so far after each new piece,
and returning True aborts that sample mid-generation (it is recorded with
``finish_reason="abort"``, never votes, and counts in ``aborted_samples``). A monitor with a
``settle(job, ask, index, sample)`` method also sees every finished sample before it is
recorded (what a batch backend returned whole, or a sample that ended before its abort landed)
and may record it as aborted. DeepConf-online (:class:`cascadec.runtime.online.OnlineMonitor`)
plugs in here; the session installs it for plans with an ``online`` strategy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Protocol

from cascadec.errors import BackendError
from cascadec.plan import Plan
from cascadec.runtime.answers import extract_answer
from cascadec.runtime.backends.base import Backend, GenerationRequest, Sample
from cascadec.runtime.backends.streaming import ABORT, Collector, StreamEvent, StreamingBackend, as_stream
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.jobs import Ask, Job
from cascadec.runtime.outcomes import FinishReason
from cascadec.runtime.prompts import render_prompt
from cascadec.runtime.records import ModelStats, SampleRecord
from cascadec.runtime.results import RunStore
from cascadec.runtime.signals import sample_mean_entropy, sample_mean_logprob


@dataclass
class ModelCounters:
    """Running counters of one model (recorded in the manifest as :class:`records.ModelStats`)."""

    loads: int = 0
    batches: int = 0
    requests: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0  # in generate()
    load_seconds: float = 0.0
    reused_samples: int = 0  # served from the journal on resume
    early_stops: int = 0  # tiers that ended before their k samples
    aborted_samples: int = 0  # stopped mid-generation


_POLL_S = 0.5  # longest wait for an event before the loop looks again


class Schedule(StrEnum):
    CONTINUOUS = "continuous"
    BARRIER = "barrier"


class SampleMonitor(Protocol):
    """Decides, from a running sample's tokens so far, whether to abort it."""

    def should_abort(
        self, job: Job, ask: Ask, index: int, logprobs: Sequence[float], confidences: Sequence[float]
    ) -> bool: ...


@dataclass
class _Flight:
    """One request in flight (its records are gathered by the stage's :class:`Collector`)."""

    job: Job
    ask: Ask
    request: GenerationRequest
    tokens: dict[int, list[float]] = field(default_factory=dict)  # chosen-token logprobs so far
    confidences: dict[int, list[float]] = field(default_factory=dict)  # token confidences so far
    stopping: set[int] = field(default_factory=set)  # samples asked to abort


class Reporter:
    """Progress hooks; this one does nothing (see :mod:`cascadec.runtime.progress`)."""

    def stage(self, model: str, tiers: str) -> None: ...
    def add(self, model: str, requests: int) -> None: ...
    def advance(self, model: str, requests: int) -> None: ...
    def loading(self, model: str, done: bool) -> None: ...
    def close(self) -> None: ...


def to_record(sample: Sample, job: Job, ask: Ask, offset: int, seconds: float) -> SampleRecord:
    finish = FinishReason(sample.finish_reason)
    return SampleRecord(
        id=job.problem.id,
        strategy=job.strategy.key,
        tier=ask.tier,
        model=ask.model,
        round=ask.round,
        phase=ask.phase,
        sample_index=ask.first + offset,
        text=sample.text,
        answer=extract_answer(sample.text, job.strategy.answer) if finish == FinishReason.STOP else None,
        num_tokens=int(sample.num_tokens),
        finish_reason=finish,
        mean_logprob=sample_mean_logprob(sample),
        mean_entropy=sample_mean_entropy(sample),
        seconds=seconds,
        temperature=ask.temperature,
        token_logprobs=_finite_or_none(sample.logprobs),
        token_confidence=_finite_or_none(sample.confidences),
        score=sample.score,
        cost=sample.cost,
    )


def _finite_or_none(values: tuple[float, ...] | None) -> list[float | None] | None:
    """Token values for the record: an engine's -inf / NaN become null (JSON has neither)."""
    if values is None:
        return None
    return [float(v) if math.isfinite(v) else None for v in values]


class Executor:
    def __init__(
        self,
        plan: Plan,
        jobs: Sequence[Job],
        backend: Backend | StreamingBackend,
        store: RunStore,
        *,
        equivalence: Equivalence,
        batch_size: int = 1024,
        reporter: Reporter | None = None,
        schedule: Schedule | str = Schedule.CONTINUOUS,
        monitor: SampleMonitor | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.plan = plan
        self.jobs = list(jobs)
        self.backend = backend
        self.stream: StreamingBackend = as_stream(backend, tokens=monitor is not None)
        self.schedule = Schedule(schedule)
        self.monitor = monitor
        self.store = store
        self.eq = equivalence
        self.batch_size = batch_size
        self.reporter = reporter or Reporter()
        self.stats: dict[str, ModelCounters] = {}
        self.loaded: str | None = None
        self.load_order: list[str] = []

    def _rank(self, model: str) -> tuple[float, str]:
        return (self.plan.models[model].params, model)

    def run(self) -> None:
        """Drive every job to its end."""
        try:
            while True:
                waiting = {j.pending.model for j in self.jobs if not j.done and j.pending is not None}
                if not waiting:
                    break
                self._stage(min(waiting, key=self._rank))
        finally:
            self.reporter.close()
            if self.loaded is not None:
                self.stream.close()
                self.loaded = None

    def _stage(self, model: str) -> None:
        """Serve every ask for ``model`` until no job waits for it (see the module docstring)."""
        stats = self.stats.setdefault(model, ModelCounters())
        queue = self._waiting(model)
        tiers = sorted({j.pending.tier for j in queue})  # type: ignore[union-attr]
        self.reporter.stage(model, ",".join(str(t) for t in tiers))
        self.reporter.add(model, len(queue))
        flights: dict[str, _Flight] = {}
        collector: Collector[SampleRecord] = Collector(self.stream.name)
        continuous = self.schedule == Schedule.CONTINUOUS
        while queue or flights:
            room = self.batch_size - len(flights)
            if queue and room > 0 and (continuous or not flights):
                submit, queue = queue[:room], queue[room:]
                ready = self._submit(model, submit, flights, collector, stats)
            else:
                ready = self._poll(model, flights, collector, stats)
            queue.extend(self._complete(model, ready, stats))
        self._save_stats()

    def _waiting(self, model: str) -> list[Job]:
        return [j for j in self.jobs if not j.done and j.pending is not None and j.pending.model == model]

    def _ensure_loaded(self, model: str, stats: ModelCounters) -> None:
        if self.loaded == model:
            return
        t0 = time.perf_counter()
        self.reporter.loading(model, done=False)
        self.stream.load(self.plan.models[model])
        self.reporter.loading(model, done=True)
        stats.load_seconds += time.perf_counter() - t0
        stats.loads += 1
        self.loaded = model
        self.load_order.append(model)

    def _submit(
        self,
        model: str,
        jobs: list[Job],
        flights: dict[str, _Flight],
        collector: Collector[SampleRecord],
        stats: ModelCounters,
    ) -> list[tuple[Job, list[SampleRecord]]]:
        """Send the jobs' asks to the engine; asks the journal already answers are ready at once."""
        ready, requests = [], []
        for job in jobs:
            ask = job.pending
            assert ask is not None
            reused = self.store.reuse(job.problem.id, job.strategy.key, ask.tier, ask.first, ask.n)
            if reused is not None:
                ready.append((job, reused))
                stats.reused_samples += len(reused)
                continue
            req = ask.request(
                f"{job.problem.id}|{job.strategy.key}|{ask.tier}|{ask.round}",
                job.problem.id,
                render_prompt(job.strategy.prompt, job.problem.problem, self.plan.models[model].path),
            )
            flights[req.request_id] = _Flight(job, ask, req)
            collector.expect(req)
            requests.append(req)
        if requests:
            self._ensure_loaded(model, stats)
            self.stream.submit(requests, stream_tokens=self.monitor is not None)
            stats.batches += 1
            stats.requests += len(requests)
        return ready

    def _poll(
        self,
        model: str,
        flights: dict[str, _Flight],
        collector: Collector[SampleRecord],
        stats: ModelCounters,
    ) -> list[tuple[Job, list[SampleRecord]]]:
        """Wait for samples; the requests whose samples are all in come back as records."""
        t0 = time.perf_counter()
        events = self.stream.poll(_POLL_S)
        seconds = time.perf_counter() - t0
        finished: list[tuple[_Flight, int, Sample]] = []
        seen: set[tuple[str, int]] = set()
        for ev in events:
            collector.check(ev, f" (model {model})")
            if (ev.request_id, ev.index) in seen:  # twice in one poll
                raise BackendError(
                    f"backend {self.stream.name} sent a sample nobody asked for: "
                    f"{ev.request_id} #{ev.index} (model {model})"
                )
            flight = flights[ev.request_id]
            if ev.sample is None:
                self._watch(flight, ev)
                continue
            seen.add((ev.request_id, ev.index))
            sample = ev.sample
            settle = getattr(self.monitor, "settle", None)
            if settle is not None:
                sample = settle(flight.job, flight.ask, ev.index, sample)
            finished.append((flight, ev.index, sample))
        # the poll's wall time is shared by the samples it finished, by tokens
        total_tokens = sum(s.num_tokens for _, _, s in finished) or 1
        ready, journal = [], []
        for flight, index, sample in finished:
            share = seconds * sample.num_tokens / total_tokens
            stats.aborted_samples += int(sample.finish_reason == ABORT)
            rid = flight.request.request_id
            records = collector.add(rid, index, to_record(sample, flight.job, flight.ask, index, share))
            if records is not None:
                del flights[rid]
                ready.append((flight.job, records))
                journal.extend(records)
        self.store.add_samples(journal)
        stats.samples += len(journal)
        stats.tokens += sum(r.num_tokens for r in journal)
        stats.seconds += seconds
        return ready

    def _watch(self, flight: _Flight, ev: StreamEvent) -> None:
        """New tokens of a running sample: let the monitor judge them, abort when it says so."""
        flight.tokens.setdefault(ev.index, []).extend(ev.logprobs)
        flight.confidences.setdefault(ev.index, []).extend(ev.confidences)
        if self.monitor is None or ev.index in flight.stopping:
            return
        if self.monitor.should_abort(
            flight.job, flight.ask, ev.index, flight.tokens[ev.index], flight.confidences[ev.index]
        ):
            flight.stopping.add(ev.index)
            self.stream.abort(ev.request_id, ev.index)

    def _complete(
        self, model: str, ready: list[tuple[Job, list[SampleRecord]]], stats: ModelCounters
    ) -> list[Job]:
        """Hand each job its samples and let it decide; returns the jobs that ask ``model`` again."""
        if not ready:
            return []
        self.reporter.advance(model, len(ready))
        # every equivalence pair at once: one parallel math-verify call (pooled votes span tiers)
        answers_by_job = []
        for job, records in ready:
            answers = {s.answer for s in job.samples if s.answer is not None}
            answers |= {r.answer for r in records if r.answer is not None}
            answers_by_job.append(sorted(answers))
        self.eq.prepare_owned(  # each problem's grading within its budget
            (
                (job.key, [(a, b) for x, a in enumerate(ans) for b in ans[x + 1 :]])
                for (job, _), ans in zip(ready, answers_by_job, strict=True)
            ),
            both_ways=True,
        )
        done: list[Job] = []
        again: list[Job] = []
        for job, records in ready:
            run = job.runs[-1]
            was_stopped = run.early_stopped
            job.receive(records)
            stats.early_stops += int(run.early_stopped and not was_stopped)
            if job.done:
                done.append(job)
            elif job.pending is not None and job.pending.model == model:
                again.append(job)
        # grading, batched the same way
        self.eq.prepare_owned(
            (j.key, [(j.problem.gold, j.final_answer)]) for j in done if j.final_answer and j.problem.gold
        )
        for job in done:
            job.grade()
        self.store.add_finished([job.record() for job in done])
        if again:
            self.reporter.add(model, len(again))
        return again

    def _save_stats(self) -> None:
        self.store.record_models({m: ModelStats(**s) for m, s in self.model_stats().items()})

    def model_stats(self) -> dict[str, dict]:
        return {
            m: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(s).items()}
            for m, s in self.stats.items()
        }
