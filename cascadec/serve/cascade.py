"""One request, one job: drive the runtime's Job through the tiers on the shared engines.

This is ``cascadec run``'s per-problem logic, unchanged: the same :class:`Job` (votes,
signals, escalation, retries, exploration, budgets, final-answer policy), the same prompt
rendering, request seeds and sample records as the executor. Only the scheduling differs: each
ask goes to its model's engine, which batches it with the other requests' asks.

The problem id — and so every sample's seed — is the request's ``problem_id`` or else a hash
of the problem text (and the client's ``seed``): the same question gets the same samples, and
a request with a run's problem id gets exactly that run's samples.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cascadec.core.policies import FinalAnswer
from cascadec.errors import CascadecError, UpstreamUnavailable
from cascadec.plan import data_columns, resolve_problems
from cascadec.runtime.data import Problem, routing_columns
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.executor import to_record
from cascadec.runtime.jobs import Job, run_cost
from cascadec.runtime.online import OnlineMonitor
from cascadec.runtime.prompts import render_prompt
from cascadec.runtime.records import SampleRecord
from cascadec.runtime.router_features import attach_routes
from cascadec.runtime.signals import json_safe
from cascadec.serve.catalog import Served
from cascadec.serve.engines import EnginePool
from cascadec.serve.errors import ServeError, upstream
from cascadec.serve.metrics import reference_cost
from cascadec.serve.tokens import prompt_tokens

Delta = Callable[[str], Awaitable[None]]
# votes and equivalence checks (math-verify in worker processes) off the event loop
_DECIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decide")


def problem_id(text: str, seed: int | None = None) -> str:
    digest = hashlib.sha256(f"{'' if seed is None else seed}\x00{text}".encode()).hexdigest()
    return f"serve-{digest[:16]}"


@dataclass
class Outcome:
    """What a finished request reports: the winning sample and everything that led to it."""

    served: Served
    job: Job
    problem: str
    text: str
    finish_reason: str
    prompt_tokens: int
    batches: list[int] = field(default_factory=list)  # requests per engine call, per ask
    waits: list[float] = field(default_factory=list)  # seconds waiting for the engine, per ask
    streamed: bool = False
    final: SampleRecord | None = None  # the winning sample
    data: dict[str, float] = field(default_factory=dict)  # the data columns the strategy read
    prompted: set[int] = field(default_factory=set)  # tiers whose prompt ``prompt_tokens`` counts

    @property
    def completion_tokens(self) -> int:
        return sum(s.num_tokens for s in self.job.samples)


def _final_sample(job: Job, eq: Equivalence) -> SampleRecord | None:
    """The sample whose text is the answer: the first member of the winning cluster."""
    for run in reversed(job.runs):
        vote = run.vote
        if vote is not None and vote.clusters and vote.winner == job.final_answer:
            return run.samples[vote.clusters[0].members[0]]
    if job.final_answer is not None:  # pooled: the winner may span tiers
        for s in reversed(job.samples):
            if s.answer is not None and eq.same(s.answer, job.final_answer):
                return s
    samples = job.samples
    return samples[-1] if samples else None


def _streams_final(job: Job) -> bool:
    """Whether the pending ask's one sample will be the answer as generated (no vote to wait for)."""
    ask = job.pending
    run = job.runs[-1]
    tier = run.tier
    return (
        ask is not None
        and run.pos == len(job.tiers) - 1
        and ask.n == 1
        and tier.k == 1
        and tier.retry is None
        and job.strategy.final_answer == FinalAnswer.LAST_TIER
    )


class CascadeRunner:
    """Runs requests against the engines; one instance per server."""

    def __init__(self, engines: EnginePool, equivalence: Equivalence):
        self.engines = engines
        self.eq = equivalence

    def check(self, served: Served) -> None:
        """Every model the strategy may reach has an engine here (else 404 before any work)."""
        for tier in served.strategy.tiers:
            if tier.model not in self.engines:
                raise ServeError(
                    404, f"no engine serves model {tier.model!r} (tier of {served.name})", code="E600"
                )

    def start(
        self,
        served: Served,
        text: str,
        *,
        seed: int | None = None,
        data: Mapping[str, float] | None = None,
        pid: str | None = None,
    ) -> Outcome:
        """A new job for ``text`` (nothing asked yet); :meth:`drive` runs it.

        ``data``: the request's data columns; the strategy reads those a run reads from its table
        (:func:`cascadec.plan.data_columns`). A column it routes by (adaptive k) that the request
        lacks is a 400 (E607): the spec is never served with its routing silently dropped."""
        strategy = served.strategy
        data = dict(data or {})
        for column in routing_columns([strategy]):
            if column not in data:
                raise ServeError(
                    400,
                    f"{served.name} starts each problem by its {column!r} (adaptive_k.column), as "
                    f"it was certified: give it in the request body, e.g. {{{json.dumps(column)}: 3}} "
                    "(the OpenAI client's extra_body)",
                    code="E607",
                    param=column,
                )
        features = {c: data[c] for c in data_columns([strategy]) if c in data}
        problem = Problem(id=pid or problem_id(text, seed), problem=text, features=features)
        problem = attach_routes([strategy], [problem])[0]  # learned routing: predicted from the prompt
        tiers = resolve_problems(strategy, [problem.features])[0]
        return Outcome(
            served, Job(problem, served.strategy, tiers, self.eq), text, "", "stop", 0, data=features
        )

    async def drive(self, outcome: Outcome, on_delta: Delta | None = None) -> Outcome:
        """Ask, wait, decide until the job is done; ``on_delta`` streams the final sample if it can."""
        job, served = outcome.job, outcome.served
        strategy, problem = served.strategy, job.problem
        loop = asyncio.get_running_loop()
        # online termination: whole samples here, judged as a run judges them (same decisions)
        online = OnlineMonitor() if strategy.online is not None else None
        while not job.done:
            ask = job.pending
            assert ask is not None
            model = served.plan.models[ask.model]
            prompt = render_prompt(strategy.prompt, outcome.problem, model.path)
            if ask.tier not in outcome.prompted:  # as OpenAI counts: the prompt once, not per sample
                outcome.prompted.add(ask.tier)  # (once per tier: each tier's model reads it)
                outcome.prompt_tokens += prompt_tokens(model.path, prompt)
            engine = self.engines[ask.model]
            request = ask.request(
                f"{problem.id}|{strategy.key}|{ask.tier}|{ask.round}|{self.engines.next_serial()}",
                problem.id,
                prompt,
            )
            t0 = time.perf_counter()
            try:
                if on_delta is not None and engine.can_stream and _streams_final(job):
                    outcome.streamed = True
                    samples = [await engine.stream_text(request, on_delta)]
                    outcome.batches.append(1)
                else:
                    samples, size = await engine.generate(request)
                    outcome.batches.append(size)
            except CascadecError as exc:
                raise upstream_error(
                    job, exc.message, unavailable=isinstance(exc, UpstreamUnavailable)
                ) from None
            outcome.waits.append(time.perf_counter() - t0)
            if online is not None:
                samples = [online.settle(job, ask, i, s) for i, s in enumerate(samples)]
            records = [to_record(s, job, ask, i, 0.0) for i, s in enumerate(samples)]
            await loop.run_in_executor(_DECIDE, job.receive, records)
        final = outcome.final = _final_sample(job, self.eq)
        if final is not None and overlong(final):
            raise ServeError(
                400,
                f"the problem does not fit the context of {final.model}: its prompt is longer than "
                "the model takes, so no text could be generated; shorten it",
                code="E602",
                param="messages",
            )
        if final is not None:
            outcome.text, outcome.finish_reason = final.text, final.finish_reason
        return outcome


def overlong(sample: SampleRecord) -> bool:
    """The sample every backend returns for a prompt longer than the model's context: no text,
    no token, cut at the length limit (a generation that ran has at least one token)."""
    return sample.text == "" and sample.num_tokens == 0 and sample.finish_reason == "length"


def upstream_error(job: Job, reason: str, *, unavailable: bool) -> ServeError:
    """502 (the engine answered wrongly) or 503 (``unavailable``: unreachable, dead, too slow, as the
    error's type says: ``UpstreamUnavailable``), naming the tier."""
    ask = job.pending
    where = f"tier {ask.tier} ({ask.model})" if ask is not None else "the engine"
    return upstream(503 if unavailable else 502, f"{where} failed: {reason}")


def summary(outcome: Outcome, reference_cost_per_token: float) -> dict:
    """The response's ``cascade`` field: what happened, tier by tier."""
    job, served = outcome.job, outcome.served
    tiers = []
    for run, (size, wait) in zip(job.runs, _per_run(outcome), strict=False):
        tokens = sum(s.num_tokens for s in run.samples)
        tiers.append(
            {
                "tier": run.index,
                "model": run.tier.model,
                "samples": len(run.samples),
                "decision": run.decision,
                "votes": run.vote.counts() if run.vote else {},
                "signals": json_safe(run.signals),
                "tokens": tokens,
                "cost": round(run_cost(run), 6),
                "batch_requests": size,
                "seconds": round(wait, 4),
            }
        )
    reference = reference_cost(outcome, reference_cost_per_token)
    return {
        "strategy": served.strategy.key,
        "kind": served.strategy.kind,
        "plan_hash": served.plan.hash,
        "final_answer": job.final_answer,
        "stop_reason": job.stop_reason,
        "data": dict(outcome.data),
        "start_tier": job.runs[0].index if job.runs else None,
        "tiers_run": [run.index for run in job.runs],
        "escalated": len(job.runs) > 1,
        "tiers_used": len(job.runs),
        "tiers": tiers,
        "samples": len(job.samples),
        "cost": round(job.cost, 6),
        "cost_relative": round(job.cost / reference, 6) if reference > 0 else None,
        "streamed": outcome.streamed,
    }


def _per_run(outcome: Outcome) -> list[tuple[int, float]]:
    """Per tier: the largest engine batch its asks shared, and its seconds waiting for the engine."""
    out, i = [], 0
    for run in outcome.job.runs:
        asks = max(1, run.rounds)
        out.append((max(outcome.batches[i : i + asks], default=0), sum(outcome.waits[i : i + asks])))
        i += asks
    return out
