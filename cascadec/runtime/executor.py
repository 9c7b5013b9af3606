"""The scheduler: run every job of a plan, one model at a time, in batches.

Scheduling by model, not by problem: while jobs are pending, take the cheapest model that
some job waits for (cost = the model's ``params``), load it, and serve *every* ask for it —
from every strategy, first rounds, later rounds, retries — in batched ``generate`` calls
(one request with ``n`` samples per ask, so engines share the prompt prefix), deciding after
each batch. Only when no job waits for that model does the next one load. Tiers grow in cost
along a cascade, so each model is loaded once per run (a cascade that gets cheaper would
reload, and the stats would show it).

Journaled samples (resume) are served from the run store without loading anything: a model
is loaded only when a request really has to be generated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from cascadec.errors import BackendError
from cascadec.plan import Plan
from cascadec.runtime.answers import extract_answer
from cascadec.runtime.backends.base import Backend, GenerationRequest, Sample
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.jobs import Ask, Job
from cascadec.runtime.outcomes import FinishReason
from cascadec.runtime.prompts import render
from cascadec.runtime.records import ModelStats as ModelStatsRecord
from cascadec.runtime.records import SampleRecord
from cascadec.runtime.results import RunStore
from cascadec.runtime.signals import sample_mean_entropy, sample_mean_logprob


@dataclass
class ModelStats:
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
        backend: Backend,
        store: RunStore,
        *,
        equivalence: Equivalence,
        batch_size: int = 1024,
        reporter: Reporter | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.plan = plan
        self.jobs = list(jobs)
        self.backend = backend
        self.store = store
        self.eq = equivalence
        self.batch_size = batch_size
        self.reporter = reporter or Reporter()
        self.stats: dict[str, ModelStats] = {}
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
                self.backend.close()
                self.loaded = None

    def _stage(self, model: str) -> None:
        stats = self.stats.setdefault(model, ModelStats())
        pending = self._waiting(model)
        tiers = sorted({j.pending.tier for j in pending})  # type: ignore[union-attr]
        self.reporter.stage(model, ",".join(str(t) for t in tiers))
        while pending:
            self.reporter.add(model, len(pending))
            for start in range(0, len(pending), self.batch_size):
                self._batch(model, pending[start : start + self.batch_size], stats)
            pending = self._waiting(model)
        self._save_stats()

    def _waiting(self, model: str) -> list[Job]:
        return [j for j in self.jobs if not j.done and j.pending is not None and j.pending.model == model]

    def _ensure_loaded(self, model: str, stats: ModelStats) -> None:
        if self.loaded == model:
            return
        t0 = time.perf_counter()
        self.reporter.loading(model, done=False)
        self.backend.load(self.plan.models[model])
        self.reporter.loading(model, done=True)
        stats.load_seconds += time.perf_counter() - t0
        stats.loads += 1
        self.loaded = model
        self.load_order.append(model)

    def _batch(self, model: str, jobs: list[Job], stats: ModelStats) -> None:
        got: dict[int, list[SampleRecord]] = {}
        fresh: list[Job] = []
        for i, job in enumerate(jobs):
            ask = job.pending
            assert ask is not None
            reused = self.store.reuse(job.problem.id, job.strategy.key, ask.tier, ask.first, ask.n)
            if reused is not None:
                got[i] = reused
                stats.reused_samples += len(reused)
            else:
                fresh.append(job)
        if len(fresh) < len(jobs):
            self.reporter.advance(model, len(jobs) - len(fresh))
        if fresh:
            index = {id(j): i for i, j in enumerate(jobs)}
            for job, records in self._generate(model, fresh, stats):
                got[index[id(job)]] = records
        # every equivalence pair of the batch in one parallel math-verify call (pooled votes span tiers)
        answers_by_job = []
        for i, job in enumerate(jobs):
            answers = {s.answer for s in job.samples if s.answer is not None}
            answers |= {r.answer for r in got[i] if r.answer is not None}
            answers_by_job.append(sorted(answers))
        self.eq.prepare(
            ((a, b) for ans in answers_by_job for x, a in enumerate(ans) for b in ans[x + 1 :]),
            both_ways=True,
        )
        done: list[Job] = []
        for i, job in enumerate(jobs):
            run = job.runs[-1]
            was_stopped = run.early_stopped
            job.receive(got[i])
            stats.early_stops += int(run.early_stopped and not was_stopped)
            if job.done:
                done.append(job)
        # grading, batched the same way
        self.eq.prepare((j.problem.gold, j.final_answer) for j in done if j.final_answer and j.problem.gold)
        for job in done:
            job.grade()
        self.store.add_finished([job.record() for job in done])

    def _generate(
        self, model: str, jobs: list[Job], stats: ModelStats
    ) -> list[tuple[Job, list[SampleRecord]]]:
        self._ensure_loaded(model, stats)
        requests = []
        for job in jobs:
            ask = job.pending
            assert ask is not None
            requests.append(
                GenerationRequest(
                    request_id=f"{job.problem.id}|{job.strategy.key}|{ask.tier}|{ask.round}",
                    problem_id=job.problem.id,
                    prompt=render(job.strategy.prompt, job.problem.problem, self.plan.models[model].path),
                    n=ask.n,
                    temperature=ask.temperature,
                    top_p=ask.top_p,
                    max_tokens=ask.max_tokens,
                    seed=ask.seed,
                    first_sample=ask.first,
                )
            )
        t0 = time.perf_counter()
        outputs = self.backend.generate(requests, lambda n: self.reporter.advance(model, n))
        seconds = time.perf_counter() - t0
        if len(outputs) != len(requests) or any(
            len(o) != r.n for o, r in zip(outputs, requests, strict=False)
        ):
            raise BackendError(
                f"backend {getattr(self.backend, 'name', '?')} returned the wrong number "
                f"of samples for model {model}"
            )
        total_tokens = sum(s.num_tokens for out in outputs for s in out) or 1
        fresh = []
        journal = []
        for job, out in zip(jobs, outputs, strict=True):
            ask = job.pending
            assert ask is not None
            # wall time is shared by a batch: each sample gets its share by tokens
            records = [
                to_record(s, job, ask, i, seconds * s.num_tokens / total_tokens) for i, s in enumerate(out)
            ]
            fresh.append((job, records))
            journal.extend(records)
        self.store.add_samples(journal)
        stats.batches += 1
        stats.requests += len(requests)
        stats.samples += len(journal)
        stats.tokens += sum(r.num_tokens for r in journal)
        stats.seconds += seconds
        return fresh

    def _save_stats(self) -> None:
        self.store.record_models({m: ModelStatsRecord(**s) for m, s in self.model_stats().items()})

    def model_stats(self) -> dict[str, dict]:
        return {
            m: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(s).items()}
            for m, s in self.stats.items()
        }
