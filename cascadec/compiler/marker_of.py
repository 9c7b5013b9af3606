"""The canonical marker of a compiled strategy, by a pure function: no second compile.

A marker stands for a spec that gives tiers and nothing else (``spec.from_marker``), so a
compiled strategy can be written as a marker iff every plan field the marker does not spell
holds the compiler's default (:mod:`cascadec.compiler.defaults`). ``TIER_FIELDS`` and
``STRATEGY_FIELDS`` name a decision for *every* plan field; a unit test fails when the plan
gains a field without one, so a new field cannot silently make markers mean two things.
"""

from __future__ import annotations

from collections.abc import Callable

from cascadec.compiler.defaults import (
    DEFAULT_SEED,
    canonical_default_escalate_if,
    default_answer,
    default_explore,
    default_max_tokens,
    default_prompt,
    default_top_p,
)
from cascadec.core.kinds import Kind
from cascadec.core.policies import FinalAnswer
from cascadec.core.printer import marker_text
from cascadec.marker import spellable
from cascadec.plan import PlanStrategy
from cascadec.registry import ModelRegistry

SPELLED = None  # the marker text carries this field (kind, model, k, temperature)
NOT_CONTENT = None  # a name or a fact of the model, not a choice the spec makes

# field -> None (spelled by the marker or not a choice) or the marker's default for it
TierDefault = Callable[[PlanStrategy, int, ModelRegistry], object]
TIER_FIELDS: dict[str, TierDefault | None] = {
    "model": SPELLED,
    "alias": SPELLED,
    "k": SPELLED,
    "temperature": SPELLED,
    "cost_per_token": NOT_CONTENT,
    "top_p": lambda s, i, reg: default_top_p(s.tiers[i].temperature),
    "max_tokens": lambda s, i, reg: default_max_tokens(reg.get(s.tiers[i].model)),
    "seed": lambda s, i, reg: DEFAULT_SEED,
    "escalate_if": lambda s, i, reg: canonical_default_escalate_if(s.kind, i, len(s.tiers)),
    "retry": lambda s, i, reg: None,
    "explore": lambda s, i, reg: default_explore(s.kind, i, len(s.tiers), s.tiers[i].k),
}

StrategyDefault = Callable[[PlanStrategy, ModelRegistry], object]
STRATEGY_FIELDS: dict[str, StrategyDefault | None] = {
    "key": NOT_CONTENT,
    "marker": NOT_CONTENT,
    "kind": SPELLED,
    "tiers": SPELLED,  # each tier by TIER_FIELDS
    "prompt": lambda s, reg: default_prompt(reg.get(s.tiers[0].model), reg),
    "answer": lambda s, reg: default_answer(s.prompt),
    "final_answer": lambda s, reg: FinalAnswer.LAST_TIER,
    "adaptive_k": lambda s, reg: None,
    "early_stop": lambda s, reg: None,
    "budget": lambda s, reg: None,
    "vote": lambda s, reg: None,  # a marker votes by majority with the default signals
    "online": lambda s, reg: None,  # a marker never aborts traces
    "route": lambda s, reg: None,  # a marker never routes by a learned router
}


def _spelled_name(s: PlanStrategy) -> list[str] | None:
    """Each tier's name as the marker writes it, or None when one cannot be spelled."""
    if s.kind == Kind.PLAIN:
        t = s.tiers[0]
        ok = spellable(t.alias, "ALIAS") if t.alias else spellable(t.model, "MODEL_ID")
        return [t.alias or t.model] if ok and t.k == 1 and t.temperature == 0 else None
    if not all(t.alias and spellable(t.alias, "ALIAS") for t in s.tiers):
        return None
    return [t.alias for t in s.tiers]  # type: ignore[misc]


def marker_of(strategy: PlanStrategy, registry: ModelRegistry) -> str | None:
    """The canonical marker that means exactly ``strategy``, or None when no marker does."""
    names = _spelled_name(strategy)
    if names is None:
        return None
    for field, default in STRATEGY_FIELDS.items():
        if default is not None and getattr(strategy, field) != default(strategy, registry):
            return None
    for i, tier in enumerate(strategy.tiers):
        for field, tier_default in TIER_FIELDS.items():
            if tier_default is not None and getattr(tier, field) != tier_default(strategy, i, registry):
                return None
    return marker_text(
        strategy.kind, [(n, t.k, t.temperature) for n, t in zip(names, strategy.tiers, strict=True)]
    )
