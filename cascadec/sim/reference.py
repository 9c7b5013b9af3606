"""The reference a calibration target or a cost ratio is relative to, compiled like any strategy.

Either a named strategy — a spec (.yaml) or plan (.json) file, which brings its own models, or
a marker (``72B``, ``mv_7B_k4_t0.7``), resolved against the search space's registry — or, by
default, the largest model of the plan's first strategy answering greedily, with that
strategy's prompt, answer format, max_tokens and seed (:func:`cascadec.sim.baselines.one_tier_spec`).
"""

from __future__ import annotations

from cascadec.compiler import compile_marker, plan_registry
from cascadec.plan import Plan, PlanStrategy
from cascadec.registry import RegistryLike
from cascadec.sim.baselines import compile_one_tier


def reference_strategy(
    plan: Plan, spec_ref: str | None = None, registry: RegistryLike = None
) -> tuple[PlanStrategy, Plan]:
    """(the reference strategy, the plan it belongs to): ``spec_ref`` when given (see the module
    docstring), else the largest model of ``plan``'s first strategy, greedy."""
    if spec_ref is not None:
        if spec_ref.lower().endswith((".json", ".yaml", ".yml")):
            from cascadec.api import resolve_plan

            ref_plan, _ = resolve_plan(spec_ref)
        else:
            ref_plan, _ = compile_marker(spec_ref, registry, source="--reference")
        return ref_plan.strategies[0], ref_plan
    base = plan.strategies[0]
    largest = max(base.tiers, key=lambda t: plan.models[t.model].params)
    name = largest.alias or largest.model
    strategy = compile_one_tier(plan_registry(plan), base, name, 1, 0.0, f"{name} greedy")
    return strategy, plan
