"""Assemble a report: read the inputs, set them against the bank's baselines, draw, write.

Nothing is written until every input has been read and checked; an existing report is
replaced only with ``overwrite``, and a directory holding anything cascadec did not write
there (by the folder's ownership record, ``cascadec.outputs``) is never written into. A report
killed half-way (a PNG written, no ``report.md`` yet) is cascadec's own: run again, it is
finished in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cascadec.errors import DataError, RunDirError
from cascadec.outputs import REPORT as LAYOUT
from cascadec.outputs import OwnedDir, refuse_foreign, survey
from cascadec.report import figures
from cascadec.report.analysis import (
    BOOTSTRAP_DRAWS,
    BOOTSTRAP_SEED,
    CONFIDENCE_SCALES,
    Point,
    accuracy_interval,
    flow_of,
    paired,
    ratio_interval,
    reliability,
)
from cascadec.report.inputs import Entry, load_inputs
from cascadec.report.markdown import (
    baselines_section,
    flow_section,
    frontier_section,
    inputs_section,
    reliability_section,
    significance_section,
)

REPORT = "report.md"
OUTPUTS = (REPORT, figures.ACCURACY_COST, figures.TIER_FLOW, figures.RELIABILITY)
MAX_ALL_PAIRS = 12  # above this many strategies, each is compared with the first and the reference only


@dataclass
class BankInputs:
    """A bank, its problems, the plan whose models (costs, aliases) the baselines use, and the
    baselines computed on them (``cascadec.sim.baselines.compute_baselines``: the caller computes
    them, so the report never imports the simulator)."""

    plan: object  # cascadec.plan.Plan
    bank: object  # the bank frame
    problems: list
    path: str
    equivalence: object
    baselines: object  # cascadec.sim.baselines.Baselines


WRITES = "no report was written"


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse to write over a finished report without ``overwrite``, or into other files at all."""
    s = survey(out, LAYOUT)
    refuse_foreign(s, LAYOUT, WRITES)
    if REPORT in s.owned and not overwrite:
        raise RunDirError("already holds a report; pass --overwrite to replace it", where=out)


def build_report(
    paths: list[Path],
    out: Path,
    bank: BankInputs | None = None,
    *,
    overwrite: bool = False,
    target: tuple | None = None,
) -> Path:
    """Write ``out/report.md`` and its PNGs; return the report's path. ``target``: calibrate's
    ``--target`` parsed (``cascadec.sim.targets.parse_targets``: a Target and the reference's
    name, None for the largest model), shaded on the accuracy-cost plot."""
    check_out(out, overwrite)
    entries = load_inputs(paths)
    base = None if bank is None else bank.baselines
    ref_pp = base.reference_cost / len(base.problems) if base is not None and base.problems else None
    reference = base.routes[base.reference].name if ref_pp else None
    if ref_pp is None:
        ref_pp, reference = _simulated_reference(entries)

    def ratio(cost_per_problem: float) -> float | None:
        return cost_per_problem / ref_pp if ref_pp else None

    xlabel = f"cost / {reference}" if reference else "cost per problem (the registry's unit)"
    points = [_entry_point(e, base, ref_pp) for e in entries]
    if base is not None:
        points += _baseline_points(base)
    ref_point = next((p for p in points if reference and p.name == reference and p.group != "strategy"), None)
    band = _band(target, points, ref_point, reference, ratio=reference is not None)
    curves = _reliability(entries, base, bank)
    pairs = _pairs(entries, base)
    flows = [flow_of(e.name, e.problems, e.reached, e.answered, e.last_tier, e.correct) for e in entries]
    shape = (xlabel, reference is not None, band, ref_point)

    with OwnedDir(out, LAYOUT, WRITES) as folder:  # locked: a second report into it is refused
        check_out(out, overwrite)  # again, under the lock
        return _write(folder, out, paths, entries, base, bank, points, shape, flows, curves, pairs, ratio)


def _simulated_reference(entries: list[Entry]) -> tuple[float | None, str | None]:
    """Without a bank: the reference most simulations' ``cost_ratio`` is to, and its cost per
    problem (cost / ratio), when every input covers as many problems (one problem set)."""
    named = [e for e in entries if e.reference and e.cost_ratio and e.cost_per_problem > 0]
    if not named or len({e.problems for e in entries}) != 1:
        return None, None
    counts: dict[str, int] = {}
    for e in named:
        counts[e.reference] = counts.get(e.reference, 0) + 1
    reference = max(counts, key=lambda r: (counts[r], -list(counts).index(r)))
    first = next(e for e in named if e.reference == reference)
    return first.cost_per_problem / first.cost_ratio, reference


def _entry_point(e: Entry, base, ref_pp: float | None) -> Point:
    """A strategy's point: cost (a ratio when a reference exists) and accuracy, each with its 95%
    interval: Clopper–Pearson for the accuracy, a paired bootstrap for the cost ratio (a plain
    one for the mean cost, the reference's fixed, without the reference's per-problem costs)."""
    acc_ci = None
    if e.correct is not None:
        acc_ci = accuracy_interval(e.correct)
    elif e.accuracy is not None and e.problems:
        acc_ci = accuracy_interval((round(e.accuracy * e.problems), e.problems))
    scale = 1.0 / ref_pp if ref_pp else 1.0  # cost per problem → the x axis' unit
    cost = e.cost_per_problem * scale
    cost_ci = None
    if e.costs is not None and e.costs.size >= 2:
        ref = None
        if base is not None and e.ids is not None:
            where = {p.id: i for i, p in enumerate(base.problems)}
            common = [(i, where[pid]) for i, pid in enumerate(e.ids) if pid in where]
            if len(common) == len(e.ids):
                mine = e.costs[[i for i, _ in common]]
                ref = base.cost[base.reference][[j for _, j in common]]
                cost_ci = ratio_interval(mine, ref)
        if ref is None:
            ci = ratio_interval(e.costs, None)
            cost_ci = None if ci is None else (ci[0] * scale, ci[1] * scale)
    return Point(e.name, _nan(cost), _nan(e.accuracy), "strategy", acc_ci, cost_ci)


def _baseline_points(base) -> list[Point]:
    ref_cost = base.cost[base.reference]
    out = []
    for r, row in enumerate(base.rows()):
        group = "oracle" if row["kind"] == "oracle" else row["kind"]
        correct = base.oracle.correct if group == "oracle" else base.correct[r]
        cost = base.oracle.cost if group == "oracle" else base.cost[r]
        cost_ci = None if r == base.reference else ratio_interval(cost, ref_cost)
        out.append(
            Point(
                row["name"],
                _nan(row["cost_ratio"]),
                _nan(row["accuracy"]),
                group,
                accuracy_interval(correct),
                cost_ci,
            )
        )
    return out


def _band(target: tuple | None, points: list[Point], ref_point, reference, *, ratio: bool):
    """The target region of calibrate's ``--target`` (a Target, the reference's name), on the plot's axes."""
    if not target:
        return None
    t, named = target
    ref = ref_point
    if named is not None:
        ref = next((p for p in points if p.name == named), None)
        if ref is None:
            raise DataError(f"--target: no input strategy or baseline named {named!r}")
    if ref is None or math.isnan(ref.accuracy):
        raise DataError(
            "--target: the reference has no accuracy here (give --bank and --data, or name an input strategy)"
        )
    min_acc = None if t.max_loss is None else ref.accuracy - t.max_loss
    max_cost = None
    if t.max_cost_ratio is not None:
        max_cost = t.max_cost_ratio * (ref.cost if named is not None or not ratio else 1.0)
    return figures.Band(min_acc, max_cost, "target: " + t.describe(ref.name).split(" with ")[0])


def _write(folder, out, paths, entries, base, bank, points, shape, flows, curves, pairs, ratio) -> Path:
    xlabel, is_ratio, band, ref_point = shape
    frontier = figures.accuracy_cost(
        points,
        xlabel,
        out / figures.ACCURACY_COST,
        folder.write,
        ratio=is_ratio,
        band=band,
        reference=ref_point,
    )
    figures.tier_flow(flows, out / figures.TIER_FLOW, folder.write)
    figures.reliability(curves, out / figures.RELIABILITY, folder.write)

    lines = ["# cascadec report", "", f"Inputs: {', '.join(f'`{p}`' for p in paths)}.", ""]
    oracle_pp = float(base.oracle.cost.mean()) if base is not None and base.problems else None
    lines += inputs_section(entries, ratio, oracle_pp)
    if base is not None:
        lines += baselines_section(
            base.rows(), base.routes[base.reference].name, len(base.problems), bank.path
        )
    else:
        lines += ["## Baselines and the oracle", "", "Not computed: give `--bank BANK --data FILE`.", ""]
    lines += frontier_section(figures.ACCURACY_COST, xlabel, frontier, points, band)
    lines += flow_section(figures.TIER_FLOW, flows)
    note = "Runs: the signals of the tier whose vote gave the answer. " + (
        "Bank: each model's largest vote the bank holds." if base is not None else ""
    )
    lines += reliability_section(figures.RELIABILITY, curves, note.strip())
    lines += significance_section(pairs, BOOTSTRAP_DRAWS, BOOTSTRAP_SEED)
    return folder.write(REPORT, ("\n".join(lines).rstrip() + "\n").encode("utf-8"))


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _reliability(entries: list[Entry], base, bank: BankInputs | None) -> list:
    curves = []
    for e in entries:
        if e.correct is None:
            continue
        for name in CONFIDENCE_SCALES:
            if name in e.signals:
                c = reliability(e.name, name, e.signals[name], e.correct)
                if c is not None:
                    curves.append(c)
    if base is not None:
        for label, signals, correct in _bank_votes(base, bank):
            for name in CONFIDENCE_SCALES:
                if name in signals:
                    c = reliability(label, name, signals[name], correct)
                    if c is not None:
                        curves.append(c)
    return curves


def _bank_votes(base, bank: BankInputs):
    """Each model's largest vote on the bank, run through the runtime (replay) for its signals."""
    from cascadec.plan import Plan, seal
    from cascadec.runtime.backends.replay import ReplayBackend
    from cascadec.runtime.session import Prepared, execute

    top: dict[str, int] = {}
    for i, r in enumerate(base.routes):
        if r.k > 1 and (r.model not in top or r.k > base.routes[top[r.model]].k):
            top[r.model] = i
    if not top:
        return []
    strategies = tuple(base.simulation.strategies[i] for i in top.values())
    plan = seal(Plan(models=dict(base.simulation.plan.models), strategies=strategies, source="report"))
    problems = base.problems
    assignments = [(p, s, s.tiers) for s in strategies for p in problems]
    rows, *_ = execute(
        Prepared(plan, problems, assignments),
        ReplayBackend(bank.bank),
        out=None,
        equivalence=bank.equivalence,
    )
    out = []
    for s in strategies:
        part = rows[rows["strategy"] == s.key]
        correct = np.array(
            [math.nan if c is None or c is np.nan else float(bool(c)) for c in part["correct"]]
        )
        signals: dict[str, list[float]] = {}
        for t in part["tiers"]:
            sig = t[-1]["signals"] if len(t) else {}
            for name in CONFIDENCE_SCALES:
                v = sig.get(name)
                signals.setdefault(name, []).append(math.nan if v is None else float(v))
        out.append((f"bank {s.key}", {k: np.array(v) for k, v in signals.items()}, correct))
    return out


def _pairs(entries: list[Entry], base) -> list[dict]:
    have = [e for e in entries if e.correct is not None and e.ids is not None]
    out = []
    if len(have) <= MAX_ALL_PAIRS:
        combos = [(a, b) for i, a in enumerate(have) for b in have[i + 1 :]]
    else:
        combos = [(have[0], b) for b in have[1:]]
    for a, b in combos:
        p = paired(a.name, a.ids, a.correct, b.name, b.ids, b.correct)
        if p is not None:
            out.append(p)
    if base is not None:
        ids = [p.id for p in base.problems]
        ref = base.routes[base.reference].name
        for a in have:
            p = paired(a.name, a.ids, a.correct, ref, ids, base.correct[base.reference])
            if p is not None:
                out.append(p)
    return out


__all__ = ["OUTPUTS", "REPORT", "BankInputs", "build_report", "check_out"]
