"""Spec → PlanStrategy: lower, run the passes in order, derive the marker (pure), run the checks.

Compilation stops after the first pass that reports an error (later passes assume earlier
ones succeeded) and after the checks when any fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from cascadec.compiler.checks import CHECKS, Check
from cascadec.compiler.context import Context, raise_if_errors, tidy
from cascadec.compiler.draft import Draft, emit, lower, plan_models
from cascadec.compiler.marker_of import marker_of
from cascadec.compiler.passes import PASSES, Pass
from cascadec.errors import Diagnostic
from cascadec.plan import Plan, PlanModel, PlanStrategy, seal
from cascadec.spec.model import Spec


def run_passes(spec: Spec, ctx: Context, passes: Sequence[Pass] = PASSES) -> tuple[Draft, list[Diagnostic]]:
    draft, diags = lower(spec), []
    for compiler_pass in passes:
        draft, found = compiler_pass(draft, ctx)
        diags.extend(found)
        raise_if_errors(diags)
    return draft, diags


def compile_strategy(
    spec: Spec, ctx: Context, *, fallback_key: str = "strategy", checks: Sequence[Check] = CHECKS
) -> tuple[PlanStrategy, dict[str, PlanModel], list[Diagnostic]]:
    """One spec's strategy, checked; key = spec name, else its canonical marker, else ``fallback_key``."""
    draft, diags = run_passes(spec, ctx)
    unnamed = emit(draft, "", None)
    marker = marker_of(unnamed, ctx.registry)
    strategy = unnamed.model_copy(update={"key": spec.name or marker or fallback_key, "marker": marker})
    where = tuple(t.path for t in draft.tiers)
    for check in checks:
        diags.extend(check(strategy, where, ctx))
    raise_if_errors(diags)
    return strategy, plan_models(draft, ctx.registry), tidy(diags)


def build_plan(strategies: Sequence[PlanStrategy], models: dict[str, PlanModel], source: str = "") -> Plan:
    """A sealed plan; strategies sorted by key and models by id, so equal inputs give equal bytes."""
    ordered = tuple(sorted(strategies, key=lambda s: s.key))
    return seal(Plan(source=source, models=dict(sorted(models.items())), strategies=ordered))
