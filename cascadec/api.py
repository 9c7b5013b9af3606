"""The Python API for people who work in pandas: ``run(plan, df) -> df``, ``load_data``, ``load_results``.

``run`` returns the caller's frame with result columns added (all prefixed ``cascade_``, so
they never collide with an ``answer`` or ``strategy`` column) and nothing else changed:
same index, same columns, same values — the original executor's promise that new columns are
transparent downstream. Everything that can be checked is checked before any model loads.

This module sits above the runtime: it compiles specs and markers (compiler layer) and hands
the runtime a finished plan (``cascadec.runtime.session``), which never compiles anything.
"""

from __future__ import annotations

import ast
import sys
import warnings
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
    "check_spawn_safe",
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


def _models(models: str | Path | None, registry: str | Path | None, stacklevel: int = 3) -> str | Path | None:
    """``models=`` (the CLI's ``--models``); ``registry=`` is its deprecated old name."""
    if registry is None:
        return models
    if models is not None and str(models) != str(registry):
        raise CascadecError(
            f"give models= only (registry= is its old name): got models={models!r} and registry={registry!r}",
            code="E900",
        )
    warnings.warn(
        "registry= is deprecated: use models= (as the command line's --models)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return registry


def resolve_plan(
    target: Plan | str | Path | None,
    *,
    markers: Sequence[str] = (),
    models: str | Path | None = None,
    registry: str | Path | None = None,
) -> tuple[Plan, list[Diagnostic]]:
    """A Plan from a Plan, a plan .json, a spec .yaml, marker text, or (``target=None``) markers.

    ``models``: the model registry (``"zoo"``, ``"qwen2.5-math"`` or a YAML path), as ``--models``;
    ``registry`` is its deprecated old name."""
    from cascadec.compiler import compile_markers, load_any, verify_plan

    registry = _models(models, registry)

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
    models: str | Path | None = None,
    registry: str | Path | None = None,
    source: str = "<frame>",
) -> Prepared:
    """Resolve the plan, validate the data and route every problem to its strategy and tiers.

    ``models``: the model registry, as ``--models`` (``registry`` is its deprecated old name)."""
    registry = _models(models, registry)
    if not isinstance(problems, pd.DataFrame):
        raise DataError(f"problems must be a pandas DataFrame, got {type(problems).__name__}", where=source)
    markers: list[str] = []
    if target is None and strategy_column is not None:
        if strategy_column not in problems.columns:
            raise DataError(f"no strategy column {strategy_column!r}", where=source, code="E900")
        markers = sorted({str(v).strip() for v in problems[strategy_column].dropna() if str(v).strip()})
    plan, diags = resolve_plan(target, markers=markers, models=registry)

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
    models: str | Path | None = None,
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
    ``models``: the model registry (``"zoo"``, ``"qwen2.5-math"`` or a YAML path), as the
    command line's ``--models`` (``registry`` is its deprecated old name).
    ``grading_budget``: seconds of answer grading per problem (None: unbounded).

    A backend that starts worker processes with ``spawn`` (``vllm``) re-imports the calling
    script in each worker: called from a script's top level without an
    ``if __name__ == "__main__":`` guard, ``run`` refuses (E900) before anything is made.
    """
    check_spawn_safe(backend)
    registry = _models(models, registry)
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
    prepared = prepare(target, problems, strategy_column=strategy_column, models=registry)
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


# --- the spawn requirement ------------------------------------------------------------------
SPAWNING_BACKENDS = ("vllm",)  # start their workers with multiprocessing's spawn


def _spawns(backend: str | Backend) -> bool:
    if isinstance(backend, str):
        return backend in SPAWNING_BACKENDS
    return type(backend).__module__.endswith(".vllm_offline")


def _script_frame():
    """The frame of the main script's top-level code that led to this call, or None (a notebook,
    ``python -c``, an interactive session: no script a worker could re-run)."""
    frame = sys._getframe(1)
    found = None
    while frame is not None:
        g = frame.f_globals
        if (
            frame.f_code.co_name == "<module>"
            and g.get("__name__") in ("__main__", "__mp_main__")
            and isinstance(g.get("__file__"), str)  # not ``python -c`` (a spawned child's own)
        ):
            found = frame
        frame = frame.f_back
    return found


def _under_main_guard(path: str, line: int) -> bool:
    """Whether ``line`` of ``path`` lies in the body of an ``if __name__ == "__main__":``."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return True  # cannot tell: never refuse on a guess
    for node in ast.walk(tree):
        if not (isinstance(node, ast.If) and _is_main_test(node.test)):
            continue
        if node.body and node.body[0].lineno <= line <= (node.body[-1].end_lineno or node.body[-1].lineno):
            return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def check_spawn_safe(backend: str | Backend) -> None:
    """Refuse (E900) a run a spawned worker would repeat, before anything is made.

    The vLLM backend starts one worker process per model with ``spawn``, which imports the
    calling script again in the worker: a ``cascadec.run`` at the script's top level would run
    again there (loading the model again, making the run folder again). So a run called from a
    script's top level outside ``if __name__ == "__main__":`` is refused up front, and one called
    while a spawned worker re-runs a script (it runs as ``__mp_main__``) is refused whatever the
    backend. Notebooks, ``python -c`` and
    calls from inside functions a guarded script calls are never refused."""
    frame = _script_frame()
    if frame is None:
        return
    path, line = frame.f_globals["__file__"], frame.f_lineno
    fix = (
        f'put the call under `if __name__ == "__main__":` in {path} (line {line}), e.g.\n\n'
        "    def main():\n        out = cascadec.run(...)\n\n"
        '    if __name__ == "__main__":\n        main()\n'
    )
    # a spawned child imports the script as __mp_main__ while it is still being made
    # (multiprocessing.parent_process() is set only after): guarded code never runs there
    if frame.f_globals.get("__name__") == "__mp_main__":
        raise CascadecError(
            f"cascadec.run was called while a worker process re-ran {path}: a script that "
            "starts worker processes (the vllm backend spawns one per model) must not run "
            f"anything at import; {fix}",
            code="E900",
        )
    if _spawns(backend) and not _under_main_guard(path, line):
        name = backend if isinstance(backend, str) else type(backend).__name__
        raise CascadecError(
            f"cascadec.run(backend={name!r}) is called at the top level of {path}: the backend "
            "starts its model workers with multiprocessing's spawn, which re-runs this script in "
            f"each worker (running it again there); {fix}Nothing was run or written.",
            code="E900",
        )
