"""What ``calibrate`` and ``optimize`` search over: a space's compiled candidates, the problems,
the bank and the reference, loaded once (the CLI only parses options and prints).

Every candidate goes through the compiler (:func:`cascadec.sim.space.expand`); the ones it
rejects are counted and reported (``Search.rejected``), never simulated. The reference is a
compiled strategy too (:mod:`cascadec.sim.reference`), its models added to the plan's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cascadec.core.policies import EquivalenceMode
from cascadec.errors import DataError, UsageError
from cascadec.plan import Plan, PlanStrategy, seal
from cascadec.registry import ModelRegistry
from cascadec.sim.reference import reference_strategy
from cascadec.sim.space import (
    Expansion,
    SearchSpace,
    compile_base,
    expand,
    load_space,
    require_candidates,
    space_registry,
)

EQUIVALENCE_MODES = tuple(EquivalenceMode)


@dataclass
class Search:
    """A loaded search: the space, its compiled candidates and what they are simulated on."""

    base: dict  # the space file's spec data without ``search:``
    space: SearchSpace
    plan: Plan  # the compiled base, with the reference's models
    candidates: Expansion  # compiled, in expansion order; ``candidates.rejected`` beside
    problems: list
    bank: object  # the bank frame
    equivalence: object
    registry: ModelRegistry
    reference: PlanStrategy
    uncovered: int = 0  # problems of the data the bank has no samples for (left out)

    @property
    def strategies(self) -> list[PlanStrategy]:
        return [c.strategy for c in self.candidates]


def check_equivalence(mode: str) -> str:
    if mode not in EQUIVALENCE_MODES:
        raise UsageError(f"--equivalence must be math or exact, got {mode!r}")
    return mode


def load_candidates(space_path: Path) -> tuple[dict, SearchSpace, Plan, ModelRegistry, Expansion]:
    """(base, space, compiled base plan, registry, compiled candidates) of a space file; a
    CompileError when the compiler rejects every candidate."""
    base, space = load_space(space_path)
    registry = space_registry(base, space_path)
    plan = compile_base(base, space_path, registry)
    return base, space, plan, registry, require_candidates(expand(base, space, plan, registry))


def load_search(
    space_path: Path,
    bank: Path,
    data: Path,
    equivalence: str = "math",
    limit: int | None = None,
    reference: str | None = None,
) -> Search:
    """Load and compile everything a search needs, before any simulation (see the module docstring)."""
    from cascadec.runtime.data import problems_from_frame, read_table, routing_columns
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.bank import covered_problems, load_bank

    check_equivalence(equivalence)
    base, space, plan, registry, candidates = load_candidates(space_path)
    ref, ref_plan = reference_strategy(plan, reference, registry)
    if ref_plan is not plan:
        plan = seal(plan.model_copy(update={"models": {**plan.models, **ref_plan.models}, "hash": ""}))
    frame = read_table(data)
    if limit is not None:
        frame = frame.head(limit)
    adaptive = {c.strategy.adaptive_k.column for c in candidates if c.strategy.adaptive_k}
    problems = problems_from_frame(
        frame,
        feature_columns=adaptive,
        required_columns=routing_columns(c.strategy for c in candidates),
        source=str(data),
    )
    if not any(p.gold is not None for p in problems):  # before the bank is read or anything simulated
        raise DataError(
            "no problem has a gold answer (an 'answer' column): calibrate and optimize measure "
            "accuracy against it",
            where=data,
        )
    bank_frame = load_bank(bank)
    problems, uncovered = covered_problems(problems, bank_frame, str(data))
    return Search(
        base,
        space,
        plan,
        candidates,
        problems,
        bank_frame,
        Equivalence(equivalence),
        registry,
        ref,
        uncovered,
    )


def search_notes(search: Search, data) -> list[str]:
    """What calibrate and optimize say before simulating: an answer format that reads nothing
    where bank import read an answer (a warning), problems of the data the bank lacks (a note)."""
    from cascadec.sim.recorded import answer_format_warnings

    out = [f"warning: {line}" for line in answer_format_warnings(search.plan, search.bank)]
    if search.uncovered:
        out.append(
            f"note: the bank has samples for {len(search.problems)} of the "
            f"{len(search.problems) + search.uncovered} problems of {data}: using those"
        )
    return out
