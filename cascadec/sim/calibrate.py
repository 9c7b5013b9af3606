"""Calibration with a statistical guarantee: choose on one split, certify on another.

1. Problems are split by a hash of (seed, id) into a *calibration* and a *held-out* split.
2. Every candidate of the search space and the reference run on the calibration split only
   (the held-out problems are not even handed to the simulator). The candidates whose loss
   passes the test there, and that are Pareto-efficient in (cost, loss), are put in a fixed
   sequence, most expensive (safest) first.
3. Learn-then-Test (Angelopoulos et al., 2021) with fixed-sequence testing: walking the
   sequence on the held-out split, candidate j is certified when the binomial tail p-value of
   H0 "its loss rate > ε" is ≤ δ; the walk stops at the first that is not. The cheapest
   certified candidate is chosen. With probability ≥ 1 − δ over the draw of held-out
   problems, every certified candidate — the chosen one included — has a loss rate ≤ ε.

The loss of a problem is 1 when the reference answers it right and the candidate wrong. Its
rate bounds the accuracy drop from above (acc_ref − acc_cand = P(ref right, cand wrong) −
P(ref wrong, cand right)), so "accuracy ≥ the reference's − ε with confidence 1 − δ" holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from cascadec.errors import CascadecError
from cascadec.plan import Plan, PlanStrategy, seal
from cascadec.runtime.data import Problem
from cascadec.sim.stats import binom_tail_pvalue, bootstrap_interval, clopper_pearson_upper


class CalibrationError(CascadecError):
    code = "E700"


@dataclass(frozen=True)
class Target:
    max_loss: float = 0.01  # ε: accuracy points (as a fraction) the candidate may lose vs the reference
    delta: float = 0.05  # 1 − confidence
    max_cost_ratio: float | None = None  # optional cost cap vs the reference (chosen on calibration)

    def describe(self, reference: str) -> str:
        text = f"accuracy >= {reference} - {100 * self.max_loss:g} pt with {100 * (1 - self.delta):g}% confidence"
        if self.max_cost_ratio is not None:
            text += f", cost <= {self.max_cost_ratio:g}x {reference}"
        return text


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


def order_candidates(
    loss: np.ndarray, n: int, cost: np.ndarray, ref_cost: float, target: Target
) -> list[int]:
    """The fixed testing sequence, from calibration figures only (see the module docstring)."""
    p = np.array([binom_tail_pvalue(int(x), n, target.max_loss) for x in loss])
    ok = p <= target.delta
    if target.max_cost_ratio is not None:
        ok &= cost <= target.max_cost_ratio * ref_cost
    idx = [int(i) for i in np.flatnonzero(ok)]
    idx.sort(key=lambda i: (cost[i], loss[i], i))
    pareto, best = [], np.inf
    for i in idx:  # cheapest first; keep one only if it loses less than every cheaper one
        if loss[i] < best:
            pareto.append(i)
            best = loss[i]
    return pareto[::-1]  # most expensive (safest) first


def certify(sequence: list[int], loss: np.ndarray, n: int, target: Target) -> tuple[list[int], list[float]]:
    """Fixed-sequence testing on held-out figures: (certified positions in order, p-values tested)."""
    certified, pvals = [], []
    for j, _ in enumerate(sequence):
        p = binom_tail_pvalue(int(loss[j]), n, target.max_loss)
        pvals.append(p)
        if p > target.delta:
            break
        certified.append(j)
    return certified, pvals


@dataclass
class Calibration:
    target: Target
    reference: str
    chosen: int  # candidate index
    calibration_size: int
    held_out_size: int
    sequence: list[int]
    pvalues: list[float]
    certified: list[int]
    held_out: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    def certificate(self, bank_hash: str, split_seed: int, fraction: float) -> dict:
        return {
            "target": self.target.describe(self.reference),
            "max_loss": self.target.max_loss,
            "delta": self.target.delta,
            "reference": self.reference,
            "method": "Learn-then-Test, fixed-sequence binomial tail test on the paired loss (ref right, candidate wrong)",
            "calibration_problems": self.calibration_size,
            "held_out_problems": self.held_out_size,
            "split": {"seed": split_seed, "calibration_fraction": fraction},
            "tested": len(self.pvalues),
            "certified": len(self.certified),
            "p_value": self.pvalues[self.certified[-1]],
            "loss_upper_bound": self.held_out["loss_upper_bound"],
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
    # 1. calibration split only
    c_probs = [problems[i] for i in calib]
    s1 = sim(_plan_of(base_plan, [*candidates, ref]), bank, c_probs, equivalence=equivalence)
    o = s1.outcome
    c_loss, c_n = losses(o.correct[-1], o.correct[:-1])
    c_cost = o.cost[:-1].sum(axis=1)
    ref_cost = float(o.cost[-1].sum())
    sequence = order_candidates(c_loss, c_n, c_cost, ref_cost, target)
    if not sequence:
        raise CalibrationError(
            f"no candidate meets the target ({target.describe(reference.key)}) even on the calibration split "
            f"({c_n} problems; the best loses {int(c_loss.min())}); widen the search space, "
            "lower the confidence or loosen the target"
        )
    # 2. held-out split: only the fixed sequence and the reference
    h_probs = [problems[i] for i in hold]
    s2 = sim(
        _plan_of(base_plan, [*[candidates[i] for i in sequence], ref]), bank, h_probs, equivalence=equivalence
    )
    h = s2.outcome
    h_loss, h_n = losses(h.correct[-1], h.correct[:-1])
    certified, pvals = certify(sequence, h_loss, h_n, target)
    if not certified:
        raise CalibrationError(
            f"no candidate is certified on the held-out split: the first in the sequence lost "
            f"{int(h_loss[0])} of {h_n} problems (p = {pvals[0]:.3g} > {target.delta:g}) for "
            f"{target.describe(reference.key)}; use more problems, widen the space or loosen the target"
        )
    j = certified[-1]
    chosen = sequence[j]
    figures = _figures(
        h.correct[j], h.correct[-1], h.cost[j], h.cost[-1], h.samples[j], int(h_loss[j]), h_n, target
    )
    cal_fig = {
        "accuracy": float(np.nanmean(o.correct[chosen])),
        "reference_accuracy": float(np.nanmean(o.correct[-1])),
        "cost_ratio": float(c_cost[chosen] / ref_cost) if ref_cost else None,
        "losses": int(c_loss[chosen]),
    }
    return Calibration(
        target, reference.key, chosen, len(calib), len(hold), sequence, pvals, certified, figures, cal_fig
    )


def _figures(cand, ref, cost, ref_cost, samples, loss, n, target: Target) -> dict:
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
        "loss_upper_bound": clopper_pearson_upper(loss, n, target.delta),
    }
