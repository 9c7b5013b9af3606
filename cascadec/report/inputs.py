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
from cascadec.limits import (
    MAX_DATA_BYTES,
    MAX_NAME_CHARS,
    MAX_PROBLEMS,
    MAX_REPORT_STRATEGIES,
    MAX_STRATEGIES,
    MAX_TIERS,
    read_regular_file,
)


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
    last_tier: np.ndarray | None = None  # per problem: the tier whose answer it kept
    cost_ratio: float | None = None  # a simulation's: total cost / its reference's total
    reference: str | None = None  # the name of that reference

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
        if len(entries) > MAX_REPORT_STRATEGIES:  # each is drawn, bootstrapped and compared
            raise DataError(
                f"the inputs hold more than {MAX_REPORT_STRATEGIES} strategies ({len(entries)} so far); "
                "a report draws and compares at most that many: report fewer at a time",
                where=path,
            )
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
        correct, last = [], []
        for rec in part.itertuples(index=False):
            steps = list(rec.path)
            for step in steps:
                reached[int(step["tier"])] += 1
            if steps:
                answered[int(steps[-1]["tier"])] += 1
            last.append(int(steps[-1]["tier"]) if steps else -1)
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
                last_tier=np.array(last, dtype=float),
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
    """The strategies of a ``cascadec simulate --json`` file, every field checked (types, ranges,
    lengths: :func:`_sim_entry`) before any figure is computed or drawn."""
    raw = read_regular_file(path, MAX_DATA_BYTES, "simulation JSON")  # never waits on a FIFO
    try:
        body = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError("not a simulation JSON (not UTF-8 text)", where=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not a simulation JSON: {exc.msg} at line {exc.lineno}", where=path) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise DataError(f"not a simulation JSON: {exc}", where=path) from None
    except RecursionError:
        raise DataError("not a simulation JSON: nested too deeply", where=path) from None
    rows = body.get("strategies") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows:
        raise DataError(
            "not a `cascadec simulate --json` output (no 'strategies' list); give run directories or simulate's JSON",
            where=path,
        )
    if len(rows) > MAX_STRATEGIES:
        raise DataError(f"simulation JSON has {len(rows)} strategies; at most {MAX_STRATEGIES}", where=path)
    entries = [_sim_entry(row, path, i) for i, row in enumerate(rows)]
    reference = body.get("reference")
    if isinstance(reference, str) and reference.strip() and len(reference) <= MAX_NAME_CHARS:
        for e in entries:
            e.reference = reference if e.cost_ratio is not None else None
    return entries


class _Bad(Exception):
    """A field of a simulation row that is missing, of the wrong type or out of range."""


def _integer(value, what: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{what} must be an integer, got {_short(value)}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise _Bad(f"{what} must be {bound}, got {_short(value)}")
    return value


def _number(value, what: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"{what} must be a number, got {_short(value)}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        bound = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f"a finite number >= {low:g}"
        raise _Bad(f"{what} must be {bound}, got {_short(value)}")
    return number


def _list(value, what: str, high: int) -> list:
    if not isinstance(value, list):
        raise _Bad(f"{what} must be a list, got {_short(value)}")
    if len(value) > high:
        raise _Bad(f"{what} has {len(value)} entries; at most {high}")
    return value


def _short(value, width: int = 40) -> str:
    text = repr(value) if not isinstance(value, str) or len(value) <= width else repr(value[:width]) + "..."
    return text if len(text) <= width + 8 else text[: width + 5] + "..."


def _sim_entry(row, path: Path, index: int = 0) -> Entry:
    """One strategy of a simulation JSON: validated, then converted (a located E500 otherwise)."""
    where = f"{path}: strategies[{index}]"
    try:
        if not isinstance(row, dict):
            raise _Bad(f"must be an object, got {_short(row)}")
        for key in ("strategy", "problems", "cost", "reached", "escalation_rates"):
            if key not in row:
                raise _Bad(f"lacks {key!r}")
        name = row["strategy"]
        if not isinstance(name, str) or not name.strip():
            raise _Bad(f"'strategy' must be a name, got {_short(name)}")
        if len(name) > MAX_NAME_CHARS:
            raise _Bad(f"'strategy' is {len(name)} characters; at most {MAX_NAME_CHARS}")
        problems = _integer(row["problems"], "'problems'", 0, MAX_PROBLEMS)
        cost = _number(row["cost"], "'cost'")
        acc = row.get("accuracy")
        acc = None if acc is None else _number(acc, "'accuracy'", 0.0, 1.0)
        reached = [
            _integer(x, f"'reached'[{i}]", 0, problems)
            for i, x in enumerate(_list(row["reached"], "'reached'", MAX_TIERS))
        ]
        if not reached:
            raise _Bad("'reached' is empty: a strategy has at least one tier")
        rates = [
            _number(x, f"'escalation_rates'[{i}]", 0.0, 1.0)
            for i, x in enumerate(_list(row["escalation_rates"], "'escalation_rates'", MAX_TIERS))
        ]
        if len(rates) > len(reached):
            raise _Bad(f"'escalation_rates' has {len(rates)} entries for {len(reached)} tiers")
        escalated = [round(r * n) for r, n in zip(rates, reached, strict=False)]
        escalated += [0] * (len(reached) - len(escalated))
        answered = [n - e for n, e in zip(reached, escalated, strict=False)]
        entry = Entry(name, str(path), Origin.SIMULATION, problems, acc, cost, reached, answered)
        if row.get("cost_ratio") is not None:
            entry.cost_ratio = _number(row["cost_ratio"], "'cost_ratio'")
        per = row.get("per_problem")
        if per is not None:
            if not isinstance(per, dict):
                raise _Bad(f"'per_problem' must be an object, got {_short(per)}")
            for key in ("id", "correct", "cost"):
                if key not in per:
                    raise _Bad(f"'per_problem' lacks {key!r}")
                if (
                    _list(per[key], f"'per_problem.{key}'", MAX_PROBLEMS) is not None
                    and len(per[key]) != problems
                ):
                    raise _Bad(f"'per_problem.{key}' has {len(per[key])} entries for {problems} problems")
            entry.ids = [_id(x, i) for i, x in enumerate(per["id"])]
            entry.correct = np.array([_correct(x, i) for i, x in enumerate(per["correct"])], dtype=float)
            entry.costs = np.array(
                [_number(x, f"'per_problem.cost'[{i}]") for i, x in enumerate(per["cost"])], dtype=float
            )
            _agree(entry)
            tiers = per.get("last_tier")
            if isinstance(tiers, list) and len(tiers) == problems:
                entry.last_tier = np.array(
                    [
                        -1
                        if x is None
                        else _integer(x, f"'per_problem.last_tier'[{i}]", -1, len(reached) - 1)
                        for i, x in enumerate(tiers)
                    ],
                    dtype=float,
                )
    except _Bad as exc:
        raise DataError(f"simulation JSON: {exc}", where=where) from None
    return entry


def _agree(entry: Entry) -> None:
    """The per-problem figures add up to the totals (as simulate writes them): a file whose
    per_problem says otherwise would draw a point outside its own interval."""
    total = float(entry.costs.sum()) if entry.costs is not None else entry.cost
    if not math.isclose(total, entry.cost, rel_tol=1e-6, abs_tol=1e-9):
        raise _Bad(f"'per_problem.cost' sums to {total:g}, but 'cost' is {entry.cost:g}")
    graded = entry.correct[~np.isnan(entry.correct)] if entry.correct is not None else np.array([])
    mean = float(graded.mean()) if graded.size else None
    if (mean is None) != (entry.accuracy is None) or (
        mean is not None and not math.isclose(mean, entry.accuracy, abs_tol=1e-9)
    ):
        raise _Bad(f"'per_problem.correct' gives accuracy {mean}, but 'accuracy' is {entry.accuracy}")


def _id(value, i: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 1000:
        raise _Bad(f"'per_problem.id'[{i}] must be a problem id, got {_short(value)}")
    return str(value)


def _correct(value, i: int) -> float:
    """true/false (or 1/0); null: no gold answer. Never a string ("yes" is not true)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
        return float(value)
    raise _Bad(f"'per_problem.correct'[{i}] must be true, false or null, got {_short(value)}")
