"""``explain --bank``: a plan's cost, samples and escalation per tier, measured by simulating it
on a sample bank instead of assuming escalation rates.

Totals and escalation rates are the simulator's own figures (``Simulation.summary``), so they
equal ``cascadec simulate``'s. The split of cost and samples over tiers comes from simulating
each prefix of the cascade: tiers 1..t unchanged, then a free *sink* tier (tier t+1 at one
sample and zero cost per token) so that tier t still decides, explores and retries as a
non-final tier does. A problem's first t tiers run the same in the prefix as in the whole
cascade, so the prefix's cost (less the sink's one sample) is what the whole spends up to tier
t; differences give each tier's share. Where a prefix would not run the same (cost-aware tier
skipping, a skip-to-top exploration, a budget), the split is left out and only the totals are
shown.
"""

from __future__ import annotations

import numpy as np

from cascadec.core.policies import ExploreAction
from cascadec.core.selection import worst_case_samples
from cascadec.plan import Plan, PlanStrategy, seal
from cascadec.sim.simulate import Simulation, simulate


def _prefix(strategy: PlanStrategy, t: int) -> PlanStrategy:
    sink = strategy.tiers[t + 1].model_copy(
        update={"k": 1, "cost_per_token": 0.0, "escalate_if": None, "retry": None, "explore": None}
    )
    tiers = (*strategy.tiers[: t + 1], sink)
    return strategy.model_copy(update={"key": f"{strategy.key}@{t}", "tiers": tiers})


def splittable(strategy: PlanStrategy) -> bool:
    """Whether every prefix of the cascade runs its tiers exactly as the whole cascade does."""
    a = strategy.adaptive_k
    if a is not None and a.escalation_k_threshold is not None:
        return False
    if strategy.budget is not None:
        return False
    return not any(
        t.explore is not None and t.explore.action == ExploreAction.SKIP_TO_TOP for t in strategy.tiers
    )


def _per_tier(sim: Simulation, rows: list[int]) -> tuple[list[float], list[float]] | None:
    """(mean cost, mean samples) per tier per problem from the prefixes' cumulative figures
    (the last row is the whole cascade; each prefix's sink drew one sample where reached)."""
    o = sim.outcome
    cost = np.array([o.cost[r].mean() for r in rows])
    sink = [o.reached[r, :, t + 1].mean() for t, r in enumerate(rows[:-1])]
    samples = np.array(
        [*(o.samples[r].mean() - s for r, s in zip(rows, sink, strict=False)), o.samples[rows[-1]].mean()]
    )
    dc, ds = np.diff(cost, prepend=0.0), np.diff(samples, prepend=0.0)
    if (dc < -1e-9).any() or (ds < -1e-9).any():
        return None  # a prefix did not run like the whole: show totals only
    return [float(x) for x in dc], [float(x) for x in ds]


def bank_estimate(plan: Plan, bank, problems, *, equivalence=None) -> dict[str, dict]:
    """Per strategy key: the simulator's summary (means per problem added) and per-tier rows."""
    strategies = list(plan.strategies)
    extra, index = [], {}
    for s in strategies:
        if len(s.tiers) > 1 and splittable(s):
            index[s.key] = []
            for t in range(len(s.tiers) - 1):
                index[s.key].append(len(strategies) + len(extra))
                extra.append(_prefix(s, t))
    full = seal(Plan(models=plan.models, strategies=tuple([*strategies, *extra]), source=plan.source))
    sim = simulate(full, bank, problems, equivalence=equivalence)
    n = max(len(problems), 1)
    ref_key, ref_total = _reference_total(plan, bank, problems, equivalence)
    out = {}
    for c, s in enumerate(strategies):
        summary = sim.summary(c)
        summary["cost_per_problem"] = summary["cost"] / n
        summary["samples_per_problem"] = summary["samples"] / n
        split = _per_tier(sim, [*index[s.key], c]) if s.key in index else None
        if split is None and len(s.tiers) == 1:
            split = [summary["cost_per_problem"]], [summary["samples_per_problem"]]
        tiers = []
        for t, tier in enumerate(s.tiers):
            reached = summary["reached"][t] / n
            tiers.append(
                {
                    "tier": t,  # from 0, as everywhere
                    "model": tier.alias or tier.model,
                    "reached": reached,
                    "escalated": summary["escalation_rates"][t] if t < len(s.tiers) - 1 else None,
                    "samples_per_problem": None if split is None else split[1][t],
                    "cost_per_problem": None if split is None else split[0][t],
                    "worst_cost": worst_case_samples(tier) * tier.max_tokens * tier.cost_per_token,
                }
            )
        summary["tiers"] = tiers
        if ref_total:  # the one cost ratio: total cost over the reference's total, same problems
            summary["reference"] = ref_key
            summary["cost_ratio"] = summary["cost"] / ref_total
            for row in tiers:
                cost = row["cost_per_problem"]
                row["cost_ratio"] = None if cost is None else cost * n / ref_total
        out[s.key] = summary
    return out


def _reference_total(plan: Plan, bank, problems, equivalence) -> tuple[str | None, float]:
    """(key, total cost) of the reference — the largest model of the plan's first strategy,
    greedy (:mod:`cascadec.sim.reference`, as ``simulate`` and ``calibrate``) — on the same bank
    and problems; (None, 0) when the bank cannot replay it."""
    from cascadec.errors import CascadecError
    from cascadec.sim.reference import reference_strategy

    try:
        ref, ref_plan = reference_strategy(plan)
        both = seal(Plan(models={**ref_plan.models, **plan.models}, strategies=(ref,), source="reference"))
        return ref.key, simulate(both, bank, problems, equivalence=equivalence).summary(0)["cost"]
    except CascadecError:
        return None, 0.0


def estimate_files(
    plan: Plan, bank, data, equivalence: str = "math", limit: int | None = None
) -> dict[str, dict]:
    """``bank_estimate`` from a bank path and a problem file (what ``explain --bank`` runs)."""
    from cascadec.runtime.data import read_table
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.bank import load_bank
    from cascadec.sim.simulate import problems_for

    frame = read_table(data)
    if limit is not None:
        frame = frame.head(limit)
    problems = problems_for(plan, frame, str(data))
    return bank_estimate(plan, load_bank(bank), problems, equivalence=Equivalence(equivalence))
