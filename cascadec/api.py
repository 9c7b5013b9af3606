"""The Python API for people who work in pandas: ``run(plan, df) -> df``, ``load_data``, ``load_results``.

``run`` returns the caller's frame with result columns added (all prefixed ``cascade_``, so
they never collide with an ``answer`` or ``strategy`` column) and nothing else changed:
same index, same columns, same values — the original executor's promise that new columns are
transparent downstream. Everything that can be checked is checked before any model loads.

This module sits above the runtime: it compiles specs and markers (compiler layer) and hands
the runtime a finished plan (``cascadec.runtime.session``), which never compiles anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cascadec.errors import CascadecError, CompileError, DataError, Diagnostic
from cascadec.plan import Plan, seal
from cascadec.runtime.backends import make_backend
from cascadec.runtime.backends.base import Backend
from cascadec.runtime.data import read_table
from cascadec.runtime.equivalence import DEFAULT_BUDGET, Equivalence, Mode
from cascadec.runtime.progress import make_reporter
from cascadec.runtime.results import PROBLEM_COLUMNS, load_results
from cascadec.runtime.session import Prepared, execute, route

__all__ = [
    "RESULT_PREFIX",
    "Prepared",
    "execute",
    "load_data",
    "load_results",
    "prepare",
    "resolve_plan",
    "run",
]

RESULT_PREFIX = "cascade_"


def load_data(name_or_path: str | Path) -> pd.DataFrame:
    """A problem table: a shipped set by name (``"gsm8k"``, ``"math500"``, ``"aime24"``,
    ``"amc23"``; see ``cascadec.datasets``) or a local .jsonl/.csv/.parquet file, as read by
    ``--data``. The frame is ready for :func:`run`; GSM8K gets ``id`` = its row number as text."""
    return read_table(name_or_path)


def _registry(registry: str | Path | None):
    """What the compiler accepts: None (the default registry), a shipped name (``zoo``) or a YAML path."""
    return None if registry is None else str(registry)


def resolve_plan(
    target: Plan | str | Path | None, *, markers: Sequence[str] = (), registry: str | Path | None = None
) -> tuple[Plan, list[Diagnostic]]:
    """A Plan from a Plan, a plan .json, a spec .yaml, marker text, or (``target=None``) markers."""
    from cascadec.compiler import compile_markers, load_any, verify_plan

    if isinstance(target, Plan):  # verified like a plan file: an object can be built by hand too
        plan = target if target.hash else seal(target)
        diags = verify_plan(plan)
    elif target is None:
        if not markers:
            raise CascadecError(
                "nothing to run: give a plan, a spec, a marker or a strategy column", code="E900"
            )
        plan, diags = compile_markers(list(markers), registry=_registry(registry))
    else:
        plan, diags = load_any(str(target), registry=_registry(registry))
    errors = [d for d in diags if d.is_error]
    if errors or plan is None:
        raise CompileError(
            errors[0].message if errors else "compilation failed",
            code=errors[0].code if errors else "E400",
            diagnostics=errors,
        )
    return (plan if plan.hash else seal(plan)), list(diags)


def prepare(
    target: Plan | str | Path | None,
    problems: pd.DataFrame,
    *,
    strategy_column: str | None = None,
    registry: str | Path | None = None,
    source: str = "<frame>",
) -> Prepared:
    """Resolve the plan, validate the data and route every problem to its strategy and tiers."""
    if not isinstance(problems, pd.DataFrame):
        raise DataError(f"problems must be a pandas DataFrame, got {type(problems).__name__}", where=source)
    markers: list[str] = []
    if target is None and strategy_column is not None:
        if strategy_column not in problems.columns:
            raise DataError(f"no strategy column {strategy_column!r}", where=source, code="E900")
        markers = sorted({str(v).strip() for v in problems[strategy_column].dropna() if str(v).strip()})
    plan, diags = resolve_plan(target, markers=markers, registry=registry)

    def spell(cell: str) -> str:  # any spelling of a marker finds the plan's canonical one
        from cascadec.marker import canonical

        return canonical(cell, _registry(registry))

    return route(
        plan, problems, strategy_column=strategy_column, source=source, spell=spell, diagnostics=diags
    )


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
    schedule: str = "continuous",
    progress: bool | None = None,
    backend_options: dict | None = None,
    grading_budget: float | None = DEFAULT_BUDGET,
) -> pd.DataFrame:
    """Run ``target`` (a Plan, plan .json, spec .yaml or marker) over ``problems``.

    Returns ``problems`` with ``cascade_*`` columns added (one per column of problems.parquet
    but ``id``); with ``out`` the run is also journaled there and can be resumed.
    ``grading_budget``: seconds of answer grading per problem (None: unbounded).
    """
    taken = (
        [c for c in problems.columns if str(c).startswith(RESULT_PREFIX)]
        if isinstance(problems, pd.DataFrame)
        else []
    )
    if taken:
        raise DataError(
            f"the frame already has result columns ({', '.join(map(str, taken))}); "
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
        equivalence=Equivalence(equivalence, budget=grading_budget),
        batch_size=batch_size,
        schedule=schedule,
        reporter=make_reporter(progress),
    )
    frame = problems.copy()
    for col in PROBLEM_COLUMNS[1:]:
        frame[RESULT_PREFIX + col] = result[col].array  # positional: the input index is untouched
    return frame
