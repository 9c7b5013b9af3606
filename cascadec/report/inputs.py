"""What a report reads: run directories and ``cascadec simulate --json`` files, as entries.

An entry is one strategy's figures on its problems: accuracy and cost, how many problems each
tier answered or passed on, and — when the input has them — per-problem outcomes (for paired
tests and the oracle) and the signals of the tier whose vote became the answer (for
reliability diagrams). A run holds all of that; a simulation's JSON holds the per-problem
outcomes (``per_problem``) but no signals.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from cascadec.errors import DataError, InputFileError
from cascadec.limits import MAX_DATA_BYTES, read_regular_file


class Origin(StrEnum):
    RUN = "run"
    SIMULATION = "simulation"


@dataclass
class Entry:
    """One strategy measured on a set of problems (a run's strategy or a simulated one)."""

    name: str
    source: str
    origin: Origin
    problems: int
    accuracy: float | None
    cost: float  # total over the problems
    reached: list[int]  # per tier: problems that ran it
    answered: list[int]  # per tier: problems whose answer it gave
    ids: list[str] | None = None
    correct: np.ndarray | None = None  # per problem: 1, 0, NaN without gold
    costs: np.ndarray | None = None
    signals: dict[str, np.ndarray] = field(default_factory=dict)  # final tier's, per problem

    @property
    def cost_per_problem(self) -> float:
        return self.cost / self.problems if self.problems else math.nan


def load_inputs(paths: list[Path]) -> list[Entry]:
    """Every strategy of every input, in the order given; names made unique."""
    if not paths:
        raise DataError("no inputs: give run directories and/or `cascadec simulate --json` files")
    entries: list[Entry] = []
    for path in paths:
        if not path.exists():
            raise InputFileError("no such run directory or simulation JSON", where=path)
        entries += load_run(path) if path.is_dir() else load_simulation(path)
    seen: dict[str, int] = {}
    for e in entries:
        if e.name in seen:
            seen[e.name] += 1
            e.name = f"{e.name} ({Path(e.source).name or e.source}#{seen[e.name]})"
        else:
            seen[e.name] = 1
    return entries


def _float_or_nan(value) -> float:
    if value is None:
        return math.nan
    try:
        if value is np.nan or (isinstance(value, float) and math.isnan(value)):
            return math.nan
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_run(path: Path) -> list[Entry]:
    """The strategies of a finished run directory (its problems.parquet and plan.json)."""
    from cascadec.runtime.results import load_results

    frame = load_results(path)
    n_tiers = _plan_tiers(path)
    out = []
    for key, part in frame.groupby(frame["strategy"].astype(str), sort=False):
        tiers = n_tiers.get(str(key)) or 1 + max((s["tier"] for p in part["path"] for s in p), default=0)
        reached, answered = [0] * tiers, [0] * tiers
        signals: dict[str, list[float]] = {}
        correct = []
        for rec in part.itertuples(index=False):
            steps = list(rec.path)
            for step in steps:
                reached[int(step["tier"])] += 1
            if steps:
                answered[int(steps[-1]["tier"])] += 1
            correct.append(math.nan if rec.correct is None or rec.correct is np.nan else _truth(rec.correct))
            final = list(rec.tiers)[-1]["signals"] if len(rec.tiers) else {}
            for name in set(signals) | set(final):
                signals.setdefault(name, [math.nan] * (len(correct) - 1)).append(
                    _float_or_nan(final.get(name))
                )
        costs = part["cost"].to_numpy(dtype=float)
        corr = np.array(correct, dtype=float)
        graded = corr[~np.isnan(corr)]
        out.append(
            Entry(
                name=str(key),
                source=str(path),
                origin=Origin.RUN,
                problems=len(part),
                accuracy=float(graded.mean()) if graded.size else None,
                cost=float(costs.sum()),
                reached=reached,
                answered=answered,
                ids=part["id"].astype(str).tolist(),
                correct=corr,
                costs=costs,
                signals={k: np.array(v, dtype=float) for k, v in signals.items()},
            )
        )
    return out


def _truth(value) -> float:
    try:
        return float(bool(value))
    except (TypeError, ValueError):  # pd.NA
        return math.nan


def _plan_tiers(path: Path) -> dict[str, int]:
    from cascadec.plan import load_plan
    from cascadec.runtime.rundir import PLAN_NAME

    try:
        plan = load_plan(path / PLAN_NAME)
    except Exception:  # a plan is a convenience here: the paths say how far problems went
        return {}
    return {s.key: len(s.tiers) for s in plan.strategies}


def load_simulation(path: Path) -> list[Entry]:
    """The strategies of a ``cascadec simulate --json`` file."""
    raw = read_regular_file(path, MAX_DATA_BYTES, "simulation JSON")  # never waits on a FIFO
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError("not a simulation JSON (not UTF-8 text)", where=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not a simulation JSON: {exc.msg} at line {exc.lineno}", where=path) from None
    except RecursionError:
        raise DataError("not a simulation JSON: nested too deeply", where=path) from None
    rows = body.get("strategies") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows:
        raise DataError(
            "not a `cascadec simulate --json` output (no 'strategies' list); give run directories or simulate's JSON",
            where=path,
        )
    return [_sim_entry(row, path) for row in rows]


def _sim_entry(row, path: Path) -> Entry:
    try:
        name = str(row["strategy"])
        problems = int(row["problems"])
        cost = float(row["cost"])
        acc = row.get("accuracy")
        acc = None if acc is None else float(acc)
        reached = [int(x) for x in row["reached"]]
        rates = [float(x) for x in row["escalation_rates"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"simulation JSON row lacks or mistypes {exc}", where=path) from None
    if problems < 0 or any(n < 0 for n in reached) or not all(0.0 <= r <= 1.0 for r in rates):
        raise DataError("simulation JSON has negative counts or escalation rates outside [0, 1]", where=path)
    escalated = [round(r * n) for r, n in zip(rates, reached, strict=False)]
    escalated += [0] * (len(reached) - len(escalated))
    answered = [n - e for n, e in zip(reached, escalated, strict=False)]
    entry = Entry(name, str(path), Origin.SIMULATION, problems, acc, cost, reached, answered)
    per = row.get("per_problem")
    if isinstance(per, dict):
        try:
            entry.ids = [str(x) for x in per["id"]]
            entry.correct = np.array([_float_or_nan(x) for x in per["correct"]], dtype=float)
            entry.costs = np.array([float(x) for x in per["cost"]], dtype=float)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"simulation JSON per_problem lacks or mistypes {exc}", where=path) from None
        if not len(entry.ids) == len(entry.correct) == len(entry.costs) == problems:
            raise DataError("simulation JSON per_problem lists differ in length", where=path)
    return entry
