"""Spec → PlanStrategy: lower, run the passes in order, find the canonical marker, run the checks.

Compilation stops after the first pass that reports an error (later passes assume earlier
ones succeeded) and after the checks when any fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from cascadec.compiler.checks import CHECKS, Check
from cascadec.compiler.context import Context, MarkerLocator, raise_if_errors, tidy
from cascadec.compiler.draft import Draft, emit, lower, plan_models
from cascadec.compiler.passes import PASSES, Pass
from cascadec.core.kinds import Kind
from cascadec.errors import CascadecError, Diagnostic
from cascadec.marker import Marker, MarkerTier, spellable
from cascadec.plan import Plan, PlanModel, PlanStrategy, seal
from cascadec.spec.from_marker import spec_from_marker
from cascadec.spec.model import Spec


def run_passes(spec: Spec, ctx: Context, passes: Sequence[Pass] = PASSES) -> tuple[Draft, list[Diagnostic]]:
    draft, diags = lower(spec), []
    for compiler_pass in passes:
        draft, found = compiler_pass(draft, ctx)
        diags.extend(found)
        raise_if_errors(diags)
    return draft, diags


def marker_of(draft: Draft, ctx: Context) -> str | None:
    """The canonical marker of what will run, if a marker means exactly this strategy.

    The marker is built from the compiled tiers (no text is formatted and parsed back); it
    means this strategy when the strategy a marker stands for (its spec: tiers and defaults,
    nothing else) compiles to the same plan strategy — a definition that stays right whatever
    fields plans gain.
    """
    tiers = draft.tiers
    if draft.kind == "plain":
        t = tiers[0]
        if not (spellable(t.alias, "ALIAS") if t.alias else spellable(t.spec.model, "MODEL_ID")):
            return None
    elif not all(t.alias and spellable(t.alias, "ALIAS") for t in tiers):
        return None
    marker = Marker(
        kind=Kind(draft.kind),
        tiers=tuple(
            MarkerTier(
                alias=t.alias, model=t.entry.id if t.entry else t.spec.model, k=t.k, temperature=t.temperature
            )
            for t in tiers
        ),
    )
    try:
        twin, _ = run_passes(spec_from_marker(marker), Context(ctx.registry, MarkerLocator()))
    except CascadecError:
        return None
    return str(marker) if emit(twin, "", None) == emit(draft, "", None) else None


def compile_strategy(
    spec: Spec, ctx: Context, *, fallback_key: str = "strategy", checks: Sequence[Check] = CHECKS
) -> tuple[PlanStrategy, dict[str, PlanModel], list[Diagnostic]]:
    """One spec's strategy, checked; key = spec name, else its canonical marker, else ``fallback_key``."""
    draft, diags = run_passes(spec, ctx)
    marker = marker_of(draft, ctx)
    strategy = emit(draft, spec.name or marker or fallback_key, marker)
    where = tuple(t.path for t in draft.tiers)
    for check in checks:
        diags.extend(check(strategy, where, ctx))
    raise_if_errors(diags)
    return strategy, plan_models(draft, ctx.registry), tidy(diags)


def build_plan(strategies: Sequence[PlanStrategy], models: dict[str, PlanModel], source: str = "") -> Plan:
    """A sealed plan; strategies sorted by key and models by id, so equal inputs give equal bytes."""
    ordered = tuple(sorted(strategies, key=lambda s: s.key))
    return seal(Plan(source=source, models=dict(sorted(models.items())), strategies=ordered))
