"""Calibration with a statistical guarantee: choose on one split, certify on another.

1. Problems are split by a hash of (seed, id) into a *calibration* and a *held-out* split.
2. Every candidate of the search space and the reference run on the calibration split only
   (the held-out problems are not even handed to the simulator). The candidates whose loss
   passes the test there, and that are Pareto-efficient in (cost, loss), are put in a fixed
   sequence, the most comfortably passing first (with an accuracy target alone: the most
   expensive, safest, first).
3. Learn-then-Test (Angelopoulos et al., 2021) with fixed-sequence testing: walking the
   sequence on the held-out split, candidate j is certified when the binomial tail p-value of
   H0 "its loss rate > ε" is ≤ δ; the walk stops at the first that is not. The cheapest
   certified candidate is chosen. With probability ≥ 1 − δ over the draw of held-out
   problems, every certified candidate — the chosen one included — has a loss rate ≤ ε.

A cost target "cost ≤ r × the reference" is certified in the same walk: the per-problem costs C
(candidate) and R (reference) are bounded by their plans' worst cases, so an empirical-Bernstein
bound on the mean of C − r·R is distribution-free (``stats.cost_ratio_upper``). A candidate is
certified only when every part of the target is, each tested at level δ: an intersection–union
test, so the joint guarantee holds with probability ≥ 1 − δ without splitting δ. Without an
accuracy target the most accurate certified candidate (on the calibration split) is chosen.

The loss of a problem is 1 when the reference answers it right and the candidate wrong. Its
rate bounds the accuracy drop from above (acc_ref − acc_cand = P(ref right, cand wrong) −
P(ref wrong, cand right)), so "accuracy ≥ the reference's − ε with confidence 1 − δ" holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from cascadec.compiler.cost import worst_case
from cascadec.errors import CascadecError
from cascadec.plan import Plan, PlanStrategy, seal
from cascadec.runtime.data import Problem
from cascadec.sim.targets import Target
from cascadec.stats import (
    binom_tail_pvalue,
    bootstrap_interval,
    clopper_pearson_upper,
    cost_ratio_test,
    cost_ratio_upper,
)


class CalibrationError(CascadecError):
    """Nothing meets the target (E700). ``report``: the stage that failed and the closest
    candidates with why each failed (``calibrate --json`` writes it)."""

    code = "E700"

    def __init__(self, message: str, *, report: dict | None = None, **kw):
        super().__init__(message, **kw)
        self.report = report or {}


CLOSEST = 5  # candidates an E700 report names
COST_BOUND = (
    "the cost part is tested on an upper confidence bound of the mean cost ratio, not its point "
    "value: an empirical-Bernstein bound on the mean of C - r*R, each problem's cost bounded by "
    "its plan's worst case, so a small split or a large worst case widens it"
)


def _why(i: int, loss: np.ndarray, n: int, costs: Costs, target: Target) -> dict:
    """One candidate's figures on a split, each part of the target and whether it passed."""
    item: dict = {"losses": int(loss[i]), "problems": n}
    failed = []
    shortfall = 0.0
    if target.max_loss is not None:
        ok, p = _loss_ok(loss[i], n, target)
        bound = clopper_pearson_upper(int(loss[i]), n, target.delta)
        item.update({"loss_rate": round(int(loss[i]) / max(n, 1), 6), "loss_upper_bound": round(bound, 6)})
        item["p_value"] = None if p is None else float(f"{p:.6g}")
        if not ok:
            failed.append(
                f"accuracy: p = {p:.3g} > delta {target.delta:g} ({int(loss[i])} losses in {n}, "
                f"loss rate <= {bound:.4f} at {100 * (1 - target.delta):g}% vs epsilon {target.max_loss:g})"
            )
        shortfall = max(shortfall, (bound - target.max_loss) / max(target.max_loss, 1e-12))
    ref_total = float(costs.ref.sum())
    point = float(costs.cand[i].sum() / ref_total) if ref_total else None
    upper = costs.upper(i, target.delta)
    item["cost_ratio"] = None if point is None else round(point, 6)
    item["cost_ratio_upper_bound"] = round(upper, 6) if np.isfinite(upper) else None
    if target.max_cost_ratio is not None:
        if not costs.passes(i, target):
            shown = "inf (too few problems)" if not np.isfinite(upper) else f"{upper:.4f}x"
            failed.append(
                f"cost: upper bound {shown} at {100 * (1 - target.delta):g}% > {target.max_cost_ratio:g}x "
                f"(point ratio {point:.4f}x)"
                if point is not None
                else f"cost: upper bound {shown} > {target.max_cost_ratio:g}x"
            )
        bound = upper if np.isfinite(upper) else 1e9
        shortfall = max(shortfall, (bound - target.max_cost_ratio) / max(target.max_cost_ratio, 1e-12))
    item["failed"] = failed
    item["shortfall"] = round(float(shortfall), 6)
    return item


def split(problems: list[Problem], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, held-out) indices: a hash of (seed, id), so a problem's side never depends on the others."""
    calib, hold = [], []
    for i, p in enumerate(problems):
        h = int.from_bytes(hashlib.sha256(f"{seed}|{p.id}".encode()).digest()[:8], "big") / 2**64
        (calib if h < fraction else hold).append(i)
    return np.array(calib, dtype=int), np.array(hold, dtype=int)


def losses(ref_correct: np.ndarray, cand_correct: np.ndarray) -> tuple[np.ndarray, int]:
    """(per-candidate loss counts, graded problems): loss = reference right and candidate wrong."""
    graded = ~np.isnan(ref_correct)
    ref = ref_correct[graded] == 1
    cand = cand_correct[:, graded] == 1
    return (ref[None, :] & ~cand).sum(axis=1), int(graded.sum())


@dataclass(frozen=True)
class Costs:
    """Per-problem costs of candidates and reference on one split, with each plan's worst case
    (the bound that makes a cost guarantee distribution-free)."""

    cand: np.ndarray  # candidates × problems
    ref: np.ndarray  # problems
    cand_max: np.ndarray  # per candidate
    ref_max: float

    def passes(self, i: int, target: Target) -> bool:
        if target.max_cost_ratio is None:
            return True
        return cost_ratio_test(
            self.cand[i], self.ref, float(self.cand_max[i]), self.ref_max, target.delta, target.max_cost_ratio
        )

    def upper(self, i: int, delta: float) -> float:
        return cost_ratio_upper(self.cand[i], self.ref, float(self.cand_max[i]), self.ref_max, delta)


def _loss_ok(loss: int, n: int, target: Target) -> tuple[bool, float | None]:
    if target.max_loss is None:
        return True, None
    p = binom_tail_pvalue(int(loss), n, target.max_loss)
    return p <= target.delta, p


def order_candidates(loss: np.ndarray, n: int, costs: Costs, target: Target) -> list[int]:
    """The fixed testing sequence, from calibration figures only (see the module docstring):
    the candidates that pass the whole target on this split and are Pareto-efficient in
    (cost, loss), the most comfortable first — ordered by the smaller of their relative slacks
    (ε − the loss bound) / ε and (r − the cost-ratio bound) / r. With an accuracy target alone
    that is the most expensive (safest) first; with a cost target alone, the cheapest first."""
    total = costs.cand.sum(axis=1)
    idx = [i for i in range(len(loss)) if _loss_ok(loss[i], n, target)[0] and costs.passes(i, target)]
    idx.sort(key=lambda i: (total[i], loss[i], i))
    pareto, best = [], np.inf
    for i in idx:  # cheapest first; keep one only if it loses less than every cheaper one
        if loss[i] < best:
            pareto.append(i)
            best = loss[i]

    def slack(i: int) -> float:
        parts = []
        if target.max_loss is not None:
            bound = clopper_pearson_upper(int(loss[i]), n, target.delta)
            parts.append((target.max_loss - bound) / max(target.max_loss, 1e-12))
        if target.max_cost_ratio is not None:
            parts.append((target.max_cost_ratio - costs.upper(i, target.delta)) / target.max_cost_ratio)
        return min(parts)

    return sorted(pareto, key=lambda i: (-slack(i), -total[i] if target.max_loss is not None else total[i]))


def choose(
    certified: list[int], sequence: list[int], loss: np.ndarray, total: np.ndarray, target: Target
) -> int:
    """The candidate written, among the certified (all covered by the one guarantee): the cheapest
    on the calibration split with an accuracy target, else the most accurate there."""
    pool = [sequence[j] for j in certified]
    if target.max_loss is not None:
        return min(pool, key=lambda i: (total[i], loss[i], i))
    return min(pool, key=lambda i: (loss[i], total[i], i))


def _parts(loss: np.ndarray, n: int, costs: Costs, target: Target) -> str:
    """How many candidates pass each part of a joint target on its own (why none passes both)."""
    if target.max_loss is None or target.max_cost_ratio is None:
        return ""
    acc = sum(_loss_ok(x, n, target)[0] for x in loss)
    cost = sum(costs.passes(i, target) for i in range(len(loss)))
    return f"; {acc} of {len(loss)} pass the accuracy part alone, {cost} the cost part alone"


def certify(
    sequence: list[int], loss: np.ndarray, n: int, costs: Costs, target: Target
) -> tuple[list[int], list[float | None]]:
    """Fixed-sequence testing on held-out figures: (certified positions in order, accuracy
    p-values tested). Position j is certified when every part of the target is (an
    intersection–union test: one level δ for the whole target, no split of δ needed)."""
    certified, pvals = [], []
    for j, _ in enumerate(sequence):
        ok, p = _loss_ok(loss[j], n, target)
        pvals.append(p)
        if not (ok and costs.passes(j, target)):
            break
        certified.append(j)
    return certified, pvals


METHOD = (
    "Learn-then-Test, fixed-sequence testing; accuracy: binomial tail test on the paired loss "
    "(ref right, candidate wrong); cost: empirical-Bernstein bound on the mean of C - r*R, each "
    "problem's cost bounded by its plan's worst case; both parts at one level (intersection-union)"
)


@dataclass
class Calibration:
    target: Target
    reference: str
    chosen: int  # candidate index
    calibration_size: int
    held_out_size: int
    sequence: list[int]
    pvalues: list[float | None]
    certified: list[int]
    held_out: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    def certificate(self, bank_hash: str, split_seed: int, fraction: float) -> dict:
        return {
            "target": self.target.describe(self.reference),
            "max_loss": self.target.max_loss,
            "delta": self.target.delta,
            "reference": self.reference,
            "max_cost_ratio": self.target.max_cost_ratio,
            "method": METHOD,
            "calibration_problems": self.calibration_size,
            "held_out_problems": self.held_out_size,
            "split": {"seed": split_seed, "calibration_fraction": fraction},
            "tested": len(self.pvalues),
            "certified": len(self.certified),
            "p_value": self.pvalues[self.sequence.index(self.chosen)],
            "loss_upper_bound": self.held_out["loss_upper_bound"],
            "cost_ratio_upper_bound": self.held_out["cost_ratio_upper_bound"],
            "held_out": self.held_out,
            "bank_hash": bank_hash,
        }


def _plan_of(base: Plan, strategies: list[PlanStrategy]) -> Plan:
    return seal(Plan(models=base.models, strategies=tuple(strategies), source="calibrate"))


def calibrate(
    candidates: list[PlanStrategy],
    reference: PlanStrategy,
    base_plan: Plan,
    bank,
    problems: list[Problem],
    target: Target,
    *,
    fraction: float = 0.5,
    seed: int = 0,
    equivalence=None,
    simulate_fn=None,
) -> Calibration:
    """Choose on the calibration split, certify on the held-out split (see the module docstring)."""
    from cascadec.sim.simulate import simulate

    sim = simulate_fn or simulate
    calib, hold = split(problems, fraction, seed)
    if len(calib) < 10 or len(hold) < 10:
        raise CascadecError(
            f"the split has {len(calib)} calibration and {len(hold)} held-out problems; need at least 10 each",
            code="E701",
        )
    ref = reference.model_copy(update={"key": "__reference__"})
    worst = np.array([worst_case(c).cost for c in candidates])
    ref_max = worst_case(reference).cost
    # 1. calibration split only
    c_probs = [problems[i] for i in calib]
    s1 = sim(_plan_of(base_plan, [*candidates, ref]), bank, c_probs, equivalence=equivalence)
    o = s1.outcome
    c_loss, c_n = losses(o.correct[-1], o.correct[:-1])
    c_costs = Costs(o.cost[:-1], o.cost[-1], worst, ref_max)
    sequence = order_candidates(c_loss, c_n, c_costs, target)
    if not sequence:
        why = [_why(i, c_loss, c_n, c_costs, target) | {"candidate": i} for i in range(len(candidates))]
        closest = sorted(why, key=lambda w: (w["shortfall"], w["candidate"]))[:CLOSEST]
        bound_note = ""
        if target.max_cost_ratio is not None:
            best = min(
                why,
                key=lambda w: (
                    w["cost_ratio_upper_bound"] if w["cost_ratio_upper_bound"] is not None else np.inf
                ),
            )
            low = best["cost_ratio_upper_bound"]
            bound_note = (
                f"; {COST_BOUND}: the lowest bound is "
                f"{'inf' if low is None else f'{low:.3g}x'} (candidate-{best['candidate']}, point ratio "
                f"{best['cost_ratio']:.3g}x)"
            )
        raise CalibrationError(
            f"no candidate meets the target ({target.describe(reference.key)}) even on the calibration split "
            f"({c_n} problems; the best loses {int(c_loss.min())}, the cheapest costs "
            f"{c_costs.cand.sum(axis=1).min() / max(c_costs.ref.sum(), 1e-300):.3g}x{_parts(c_loss, c_n, c_costs, target)}"
            f"{bound_note}); widen the search space, lower the confidence or loosen the target",
            report={"stage": "calibration", "closest": closest, "cost_bound": COST_BOUND},
        )
    # 2. held-out split: only the fixed sequence and the reference
    h_probs = [problems[i] for i in hold]
    s2 = sim(
        _plan_of(base_plan, [*[candidates[i] for i in sequence], ref]), bank, h_probs, equivalence=equivalence
    )
    h = s2.outcome
    h_loss, h_n = losses(h.correct[-1], h.correct[:-1])
    h_costs = Costs(h.cost[:-1], h.cost[-1], worst[sequence], ref_max)
    certified, pvals = certify(sequence, h_loss, h_n, h_costs, target)
    if not certified:
        p0 = "" if pvals[0] is None else f", p = {pvals[0]:.3g}"
        closest = [
            _why(j, h_loss, h_n, h_costs, target)
            | {"candidate": sequence[j], "position": j, "tested": j < len(pvals)}
            for j in range(min(len(sequence), CLOSEST))
        ]
        raise CalibrationError(
            f"no candidate is certified on the held-out split: the first in the sequence lost "
            f"{int(h_loss[0])} of {h_n} problems{p0}, cost ratio <= {h_costs.upper(0, target.delta):.3g}x "
            f"(upper bound) at {100 * (1 - target.delta):g}% for {target.describe(reference.key)}; "
            "use more problems, widen the space or loosen the target",
            report={
                "stage": "held_out",
                "sequence": len(sequence),
                "calibration_problems": len(calib),
                "held_out_problems": len(hold),
                "closest": closest,
                "note": "fixed-sequence testing stops at the first candidate not certified; the "
                "later ones (tested: false) were not tested, and trying them now would be another look",
                "cost_bound": COST_BOUND,
            },
        )
    chosen = choose(certified, sequence, c_loss, c_costs.cand.sum(axis=1), target)
    j = sequence.index(chosen)
    figures = held_out_figures(
        h.correct[j], h.correct[-1], h.cost[j], h.cost[-1], h.samples[j], int(h_loss[j]), h_n, target.delta
    )
    bound = h_costs.upper(j, target.delta)
    figures["cost_ratio_upper_bound"] = round(bound, 6) if np.isfinite(bound) else None
    ref_total = float(c_costs.ref.sum())
    cal_fig = {
        "accuracy": float(np.nanmean(o.correct[chosen])),
        "reference_accuracy": float(np.nanmean(o.correct[-1])),
        "cost_ratio": float(c_costs.cand[chosen].sum() / ref_total) if ref_total else None,
        "losses": int(c_loss[chosen]),
    }
    return Calibration(
        target, reference.key, chosen, len(calib), len(hold), sequence, pvals, certified, figures, cal_fig
    )


def held_out_figures(cand, ref, cost, ref_cost, samples, loss, n, delta: float) -> dict:
    """Accuracy and cost ratio with paired-bootstrap 95% intervals, and the loss bound."""
    both = np.stack([np.nan_to_num(cand), np.nan_to_num(ref), cost, ref_cost], axis=1)
    diff_ci = bootstrap_interval(both, lambda m: m[:, 0].mean() - m[:, 1].mean())
    ratio_ci = bootstrap_interval(both, lambda m: m[:, 2].sum() / m[:, 3].sum() if m[:, 3].sum() else np.nan)
    return {
        "accuracy": float(np.nanmean(cand)),
        "reference_accuracy": float(np.nanmean(ref)),
        "accuracy_diff_ci95": [round(diff_ci[0], 6), round(diff_ci[1], 6)],
        "cost_ratio": float(cost.sum() / ref_cost.sum()) if ref_cost.sum() else None,
        "cost_ratio_ci95": [round(ratio_ci[0], 6), round(ratio_ci[1], 6)],
        "samples_per_problem": float(samples.mean()),
        "losses": loss,
        "loss_upper_bound": clopper_pearson_upper(loss, n, delta),
    }
