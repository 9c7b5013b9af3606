"""The compiler's working form: a strategy half-way between a ``Spec`` and a ``PlanStrategy``.

``lower`` copies what the spec says into a ``Draft``; passes fill in the ``None`` fields one
concern at a time (each returns a new frozen Draft); ``emit`` turns the finished Draft into
plan objects and fails loudly if a pass forgot something.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cascadec.core.answer_format import AnswerFormat, default_answer_format
from cascadec.core.policies import FinalAnswer
from cascadec.plan import (
    AdaptiveK,
    Budget,
    EarlyStop,
    Exploration,
    PlanModel,
    PlanOnline,
    PlanRoute,
    PlanStrategy,
    PlanTier,
    PlanVote,
    RetryRule,
)
from cascadec.registry import ModelEntry, ModelRegistry
from cascadec.spec.model import Spec, TierSpec

NodePath = tuple[str | int, ...]


@dataclass(frozen=True)
class DraftTier:
    spec: TierSpec  # as written; passes read intent from here
    path: NodePath  # where it was written, for diagnostics
    k: int
    temperature: float
    entry: ModelEntry | None = None
    alias: str | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    escalate_if: str | None = None
    retry: RetryRule | None = None
    explore: Exploration | None = None


@dataclass(frozen=True)
class Draft:
    spec: Spec
    kind: str
    tiers: tuple[DraftTier, ...]
    written_tiers: int  # how many tiers the spec had (before cost-aware skipping)
    prompt: str | None = None
    answer: AnswerFormat | None = None
    adaptive_k: AdaptiveK | None = None
    early_stop: EarlyStop | None = None
    budget: Budget | None = None
    vote: PlanVote | None = None
    online: PlanOnline | None = None
    final_answer: FinalAnswer = FinalAnswer.LAST_TIER
    route: PlanRoute | None = None
    notes: tuple[str, ...] = field(default=())  # what passes did, for explain


def lower(spec: Spec) -> Draft:
    """The spec's strategy as a Draft: nothing resolved, nothing defaulted yet."""
    strategy = spec.strategy
    kind = strategy.kind
    many = isinstance(getattr(strategy, kind), tuple)
    tiers = tuple(
        DraftTier(
            spec=t,
            path=("strategy", kind, i) if many else ("strategy", kind),
            k=t.k,
            temperature=t.temperature,
        )
        for i, t in enumerate(strategy.tiers)
    )
    return Draft(
        spec=spec, kind=kind, tiers=tiers, written_tiers=len(tiers), final_answer=strategy.final_answer
    )


def emit(draft: Draft, key: str, marker: str | None) -> PlanStrategy:
    """The finished Draft as a PlanStrategy (every field must have been filled by a pass)."""
    tiers = []
    for t in draft.tiers:
        assert t.entry is not None and t.top_p is not None and t.max_tokens is not None and t.seed is not None
        tiers.append(
            PlanTier(
                model=t.entry.id,
                alias=t.alias,
                k=t.k,
                temperature=t.temperature,
                top_p=t.top_p,
                max_tokens=t.max_tokens,
                seed=t.seed,
                cost_per_token=t.entry.cost_per_token,
                escalate_if=t.escalate_if,
                retry=t.retry,
                explore=t.explore,
            )
        )
    assert draft.prompt is not None
    return PlanStrategy(
        key=key,
        marker=marker,
        kind=draft.kind,  # type: ignore[arg-type]
        tiers=tuple(tiers),
        prompt=draft.prompt,
        answer=draft.answer or default_answer_format(draft.prompt),
        final_answer=draft.final_answer,  # type: ignore[arg-type]
        adaptive_k=draft.adaptive_k,
        early_stop=draft.early_stop,
        budget=draft.budget,
        vote=draft.vote,
        online=draft.online,
        route=draft.route,
    )


def plan_models(draft: Draft, registry: ModelRegistry) -> dict[str, PlanModel]:
    """How to load each model the strategy uses, copied from the registry."""
    out = {}
    for t in draft.tiers:
        e = t.entry
        assert e is not None
        known = registry.get(e.id) is not None
        out[e.id] = PlanModel(
            id=e.id,
            path=registry.weights_path(e) if known else e.id,
            params=e.cost_per_token,
            greedy_only=e.greedy_only,
            tensor_parallel_size=e.tensor_parallel_size,
            max_model_len=e.max_model_len,
            dtype=e.dtype,
            gpu_memory_utilization=e.gpu_memory_utilization,
            trust_remote_code=e.trust_remote_code,
        )
    return out
