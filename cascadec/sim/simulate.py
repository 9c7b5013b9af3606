"""``simulate``: what a plan would do on a bank's problems, without a model.

Every strategy of the plan runs over every problem through the vectorised state machine
(:mod:`cascadec.sim.vector`); problems whose answers do not form a clean equivalence
partition, and strategies that use what the arrays do not model (early-stop rules other than
``decided``, confidence-weighted or filtered votes, confidence signals in conditions), go
through the runtime itself (replay backend, in memory) — either way the decisions are the
ones ``cascadec run --backend replay`` makes on the same bank.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascadec.core.conditions import parse_condition
from cascadec.core.signals import SIMULATED_SIGNALS
from cascadec.plan import Plan, PlanStrategy, data_columns
from cascadec.runtime.data import Problem, problems_from_frame, routing_columns
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.router_features import attach_routes
from cascadec.sim.arrays import BankArrays, build_arrays
from cascadec.sim.vector import REASONS, OutcomeArrays, simulate_vector
from cascadec.spec.vote import StopRule, VotePolicy


@dataclass
class Simulation:
    """Per strategy × problem outcomes of a plan on a bank."""

    plan: Plan
    strategies: list[PlanStrategy]
    problems: list[Problem]
    outcome: OutcomeArrays
    exact_problems: int  # problems that went through the runtime instead of the arrays

    def index(self, key: str) -> int:
        return [s.key for s in self.strategies].index(key)

    def summary(self, c: int, rows: np.ndarray | None = None) -> dict:
        """accuracy, cost, samples, tokens, escalation_rates (per tier) of strategy ``c``."""
        o = self.outcome
        sel = np.arange(len(self.problems)) if rows is None else np.asarray(rows)
        correct = o.correct[c, sel]
        graded = correct[~np.isnan(correct)]
        reached = o.reached[c, sel]
        tiers = len(self.strategies[c].tiers)
        rates = []
        for t in range(tiers - 1):
            here = reached[:, t]
            later = reached[:, t + 1 :].any(axis=1)
            rates.append(float((here & later).sum() / here.sum()) if here.sum() else 0.0)
        return {
            "strategy": self.strategies[c].key,
            "problems": int(sel.size),
            "accuracy": float(graded.mean()) if graded.size else None,
            "cost": float(o.cost[c, sel].sum()),
            "samples": int(o.samples[c, sel].sum()),
            "tokens": int(o.tokens[c, sel].sum()),
            "escalation_rates": rates,
            "reached": [int(reached[:, t].sum()) for t in range(tiers)],
            "stop_reasons": {r: int((o.reason[c, sel] == i).sum()) for i, r in enumerate(REASONS)},
        }

    def per_problem(self, c: int) -> dict:
        """Strategy ``c``'s outcome on each problem (``cascadec report`` pairs strategies by id):
        id, correct (null without gold), cost, and the last tier that ran."""
        o = self.outcome
        reached = o.reached[c]
        last = np.where(reached.any(axis=1), reached.shape[1] - 1 - np.argmax(reached[:, ::-1], axis=1), -1)
        return {
            "id": [p.id for p in self.problems],
            "correct": [None if math.isnan(x) else bool(x) for x in o.correct[c].tolist()],
            "cost": o.cost[c].tolist(),
            "last_tier": last.tolist(),
        }


def problems_for(plan: Plan, frame: pd.DataFrame, source: str = "<data>") -> list[Problem]:
    return problems_from_frame(
        frame,
        feature_columns=data_columns(plan.strategies),
        required_columns=routing_columns(plan.strategies),
        source=source,
    )


def needs_token_records(strategy: PlanStrategy) -> bool:
    """Whether a strategy uses what the arrays do not model (a vote policy or stop rule beyond
    plain majority and ``decided``, a confidence signal). Such strategies go through the
    runtime's exact path (replay from the bank's token records): slower, the very decisions a
    live run makes. An allow-list, so a signal added later is exact until the arrays learn it."""
    if strategy.online is not None:  # aborts cut traces where their token confidences say
        return True
    if strategy.early_stop is not None and strategy.early_stop.rule != StopRule.DECIDED:
        return True
    if strategy.vote is not None and strategy.vote.policy != VotePolicy.MAJORITY:
        return True
    conditions = []
    for tier in strategy.tiers:
        conditions += [tier.escalate_if]
        conditions += [tier.retry.when] if tier.retry else []
        conditions += [tier.explore.when] if tier.explore else []
    return any(not parse_condition(c).signals() <= SIMULATED_SIGNALS for c in conditions if c)


def _stand_in(strategy: PlanStrategy) -> PlanStrategy:
    """A shape-alike the arrays can run; its outcomes are overwritten by the runtime's."""
    tiers = tuple(
        t.model_copy(
            update={"escalate_if": None if t.escalate_if is None else "true", "retry": None, "explore": None}
        )
        for t in strategy.tiers
    )
    return strategy.model_copy(update={"tiers": tiers, "early_stop": None, "vote": None, "online": None})


def simulate(
    plan: Plan,
    bank: pd.DataFrame,
    problems: list[Problem],
    *,
    equivalence: Equivalence | None = None,
    arrays: BankArrays | None = None,
) -> Simulation:
    eq = equivalence or Equivalence("math")
    routed = attach_routes(plan.strategies, problems)  # learned routing: predictions as features
    if arrays is not None and routed != list(problems):
        arrays = dataclasses.replace(arrays, problems=routed)
    problems = routed
    arrays = arrays or build_arrays(bank, problems, plan, eq)
    strategies = list(plan.strategies)
    exact = [c for c, s in enumerate(strategies) if needs_token_records(s)]
    vector = [c for c in range(len(strategies)) if c not in exact]
    outcome = simulate_vector([_stand_in(s) if c in exact else s for c, s in enumerate(strategies)], arrays)
    hard = np.flatnonzero(arrays.exact_only)
    if hard.size and vector:
        _exact_into(outcome, plan, strategies, bank, [problems[i] for i in hard], hard, eq, only=vector)
    if exact:
        _exact_into(outcome, plan, strategies, bank, problems, np.arange(len(problems)), eq, only=exact)
    return Simulation(plan, strategies, problems, outcome, int(hard.size))


def _exact_into(outcome: OutcomeArrays, plan, strategies, bank, problems, where, eq, only=None) -> None:
    """Run ``problems`` through the runtime (replay, in memory) and write their outcomes
    (for the strategies at indices ``only``; default all)."""
    from cascadec.plan import resolve_problems
    from cascadec.runtime.backends.replay import ReplayBackend
    from cascadec.runtime.session import Prepared, execute

    chosen = set(range(len(strategies)) if only is None else only)
    assignments = []
    for c, s in enumerate(strategies):
        if c not in chosen:
            continue
        for p, tiers in zip(problems, resolve_problems(s, [p.features for p in problems]), strict=True):
            assignments.append((p, s, tiers))
    rows, _, _, _ = execute(
        Prepared(plan, problems, assignments), ReplayBackend(bank, piece=1), out=None, equivalence=eq
    )
    by_key = {(r.id, r.strategy): r for r in rows.itertuples(index=False)}
    for c, s in enumerate(strategies):
        if c not in chosen:
            continue
        for j, p in zip(where, problems, strict=True):
            r = by_key[(p.id, s.key)]
            outcome.correct[c, j] = (
                math.nan if r.correct is None or pd.isna(r.correct) else float(bool(r.correct))
            )
            outcome.cost[c, j] = r.cost
            outcome.samples[c, j] = r.samples
            outcome.tokens[c, j] = r.tokens
            outcome.tiers_used[c, j] = r.tiers_used
            outcome.reason[c, j] = REASONS.index(str(r.stop_reason))
            outcome.reached[c, j] = False
            for step in r.path:
                outcome.reached[c, j, int(step["tier"])] = True
            outcome.winner[c, j] = -2  # not a class: decided by the runtime
