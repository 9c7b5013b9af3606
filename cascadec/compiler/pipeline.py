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
from cascadec.core.printer import marker_text
from cascadec.errors import CascadecError, Diagnostic
from cascadec.marker import parse_marker
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

    Decided by construction: write the candidate marker, compile it, compare the results.
    """
    text = marker_text(draft.kind, [(t.alias or t.spec.model, t.k, t.temperature) for t in draft.tiers])
    try:
        marker = parse_marker(text, ctx.registry)
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
