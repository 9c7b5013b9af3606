"""``optimize``: the Pareto frontier of a search space, chosen on one split and reported on another.

1. Problems are split as calibration does (a hash of (seed, id)); ``--budget`` samples that many
   candidates of the space (seeded) when the space is larger.
2. Every candidate and the reference run on the calibration split only, in chunks (progress);
   the frontier is the set of candidates no other beats on both cost and accuracy there.
3. Only the frontier and the reference then run on the held-out split: each point's held-out
   accuracy and cost ratio with paired-bootstrap 95% intervals are what is reported — figures
   the choice never saw, so they are honest estimates of what each point does on new problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cascadec.errors import CascadecError
from cascadec.plan import Plan, PlanStrategy, seal
from cascadec.runtime.data import Problem
from cascadec.sim.calibrate import held_out_figures, losses, split
from cascadec.stats import bootstrap_interval

CHUNK = 512  # candidates simulated per progress step


def pareto_front(cost: np.ndarray, accuracy: np.ndarray) -> list[int]:
    """Indices no other index dominates (cost ≤ and accuracy ≥, one strictly), cheapest first;
    of exact ties (same cost and accuracy) the first index stands for all."""
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -accuracy[i], i))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return front


def sample_candidates(total: int, budget: int | None, seed: int) -> list[int]:
    """All indices, or ``budget`` of them drawn without replacement (seeded), in order."""
    if budget is None or budget >= total:
        return list(range(total))
    if budget < 1:
        raise CascadecError(f"--budget must be at least 1, got {budget}", code="E701")
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(total, size=budget, replace=False))


@dataclass
class FrontierPoint:
    candidate: int  # index into the candidates given
    calibration: dict
    held_out: dict


@dataclass
class Optimization:
    reference: str
    evaluated: list[int]  # candidate indices simulated on the calibration split
    calibration_size: int
    held_out_size: int
    points: list[FrontierPoint]
    reference_figures: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One flat row per frontier point (cheapest first): what the table and JSON show."""
        out = []
        for n, p in enumerate(self.points):
            h = p.held_out
            out.append(
                {
                    "point": n,
                    "candidate": p.candidate,
                    "cal_accuracy": p.calibration["accuracy"],
                    "cal_cost_ratio": p.calibration["cost_ratio"],
                    "accuracy": h["accuracy"],
                    "accuracy_ci95": h["accuracy_ci95"],
                    "cost_ratio": h["cost_ratio"],
                    "cost_ratio_ci95": h["cost_ratio_ci95"],
                    "samples_per_problem": h["samples_per_problem"],
                    "dominated_on_held_out": h["dominated"],
                }
            )
        return out


def _plan_of(base: Plan, strategies: list[PlanStrategy]) -> Plan:
    return seal(Plan(models=base.models, strategies=tuple(strategies), source="optimize"))


def _keyed(candidates, chosen, reference) -> tuple[list[PlanStrategy], PlanStrategy]:
    """The chosen candidates keyed by their index (``c<i>``) and the reference, keyed apart."""
    pool = [candidates[i].model_copy(update={"key": f"c{i}"}) for i in chosen]
    return pool, reference.model_copy(update={"key": "__reference__"})


def _accuracies(correct: np.ndarray) -> np.ndarray:
    """Per row, the mean over graded problems; 0 for a row with none graded."""
    return np.array([np.nanmean(r) if np.any(~np.isnan(r)) else 0.0 for r in correct])


def _evaluate(sim, base_plan, strategies, bank, probs, equivalence, progress):
    """(correct, cost) arrays [strategies, problems], simulated in chunks with progress."""
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.arrays import build_arrays

    eq = equivalence or Equivalence("math")
    arrays = None
    if sim is None:  # one set of bank arrays serves every chunk
        from cascadec.sim.simulate import simulate as sim

        arrays = build_arrays(bank, probs, _plan_of(base_plan, strategies), eq)
    correct, cost = [], []
    for start in range(0, len(strategies), CHUNK):
        chunk = strategies[start : start + CHUNK]
        kwargs = {"arrays": arrays} if arrays is not None else {}
        o = sim(_plan_of(base_plan, chunk), bank, probs, equivalence=eq, **kwargs).outcome
        correct.append(o.correct)
        cost.append(o.cost)
        if progress is not None:
            progress(start + len(chunk), len(strategies))
    return np.concatenate(correct), np.concatenate(cost)


def optimize(
    candidates: list[PlanStrategy],
    reference: PlanStrategy,
    base_plan: Plan,
    bank,
    problems: list[Problem],
    *,
    budget: int | None = None,
    fraction: float = 0.5,
    seed: int = 0,
    equivalence=None,
    simulate_fn=None,
    progress: Callable[[int, int], None] | None = None,
) -> Optimization:
    """The frontier on the calibration split, reported on the held-out split (module docstring)."""
    calib, hold = split(problems, fraction, seed)
    if len(calib) < 10 or len(hold) < 10:
        raise CascadecError(
            f"the split has {len(calib)} calibration and {len(hold)} held-out problems; need at least 10 each",
            code="E701",
        )
    chosen = sample_candidates(len(candidates), budget, seed)
    pool, ref = _keyed(candidates, chosen, reference)
    # 1. calibration split only
    c_probs = [problems[i] for i in calib]
    correct, cost = _evaluate(simulate_fn, base_plan, [*pool, ref], bank, c_probs, equivalence, progress)
    c_acc = _accuracies(correct[:-1])
    c_cost = cost[:-1].sum(axis=1)
    c_ref = float(cost[-1].sum())
    front = pareto_front(c_cost, c_acc)
    # 2. held-out split: only the frontier and the reference
    h_probs = [problems[i] for i in hold]
    strategies = [pool[j] for j in front]
    h_correct, h_cost, h_samples = _held_out(
        simulate_fn, base_plan, [*strategies, ref], bank, h_probs, equivalence
    )
    h_loss, h_n = losses(h_correct[-1], h_correct[:-1])
    h_acc = np.nanmean(h_correct[:-1], axis=1)
    h_tot = h_cost[:-1].sum(axis=1)
    h_front = set(pareto_front(h_tot, h_acc))
    points = []
    for n, j in enumerate(front):
        figures = held_out_figures(
            h_correct[n], h_correct[-1], h_cost[n], h_cost[-1], h_samples[n], int(h_loss[n]), h_n, 0.05
        )
        lo, hi = bootstrap_interval(np.nan_to_num(h_correct[n])[:, None], lambda m: m[:, 0].mean())
        figures["accuracy_ci95"] = [round(lo, 6), round(hi, 6)]
        figures["dominated"] = n not in h_front
        cal = {
            "accuracy": float(c_acc[j]),
            "cost_ratio": float(c_cost[j] / c_ref) if c_ref else None,
        }
        points.append(FrontierPoint(chosen[j], cal, figures))
    ref_fig = {
        "calibration_accuracy": float(np.nanmean(correct[-1])),
        "accuracy": float(np.nanmean(h_correct[-1])),
        "cost": float(h_cost[-1].sum()),
    }
    return Optimization(reference.key, chosen, len(calib), len(hold), points, ref_fig)


def _held_out(sim, base_plan, strategies, bank, probs, equivalence):
    from cascadec.sim.simulate import simulate

    o = (sim or simulate)(_plan_of(base_plan, strategies), bank, probs, equivalence=equivalence).outcome
    return o.correct, o.cost, o.samples


def in_sample_floor(
    candidates: list[PlanStrategy],
    reference: PlanStrategy,
    base_plan: Plan,
    bank,
    problems: list[Problem],
    max_loss_pt: float,
    equivalence=None,
) -> dict | None:
    """The cheapest candidate within ``max_loss_pt`` points of the reference's accuracy, chosen
    and measured on the very same problems — no split, no certificate.

    Not a strategy to ship (it has seen its test problems): a floor. When even this floor misses
    a cost goal, what limits the cascade is the signals the models give, not the calibration's
    margin. None when no candidate is within the loss on these problems, or none is graded.
    """
    pool, ref = _keyed(candidates, range(len(candidates)), reference)
    correct, cost = _evaluate(None, base_plan, [*pool, ref], bank, problems, equivalence, None)
    if np.isnan(correct[-1]).all():  # nothing graded: no accuracy to stay within
        return None
    acc = _accuracies(correct)
    total = cost.sum(axis=1)
    ok = np.flatnonzero(acc[:-1] >= acc[-1] - max_loss_pt / 100 - 1e-12)
    if not ok.size:
        return None
    best = int(ok[np.argmin(total[ok])])
    return {
        "candidate": best,
        "accuracy": float(acc[best]),
        "reference_accuracy": float(acc[-1]),
        "cost_ratio": float(total[best] / total[-1]) if total[-1] else None,
        "per_problem_cost": cost[best],
    }
