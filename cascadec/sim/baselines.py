"""Baselines and the oracle router on a bank: what every cascade claim is measured against.

Per model the bank holds: one greedy answer, and a majority vote at each k of the ladder
1→2→4→… up to the k every problem can replay (plus that k), at each recorded temperature.
Each baseline is a one-tier strategy run through :func:`cascadec.sim.simulate.simulate` — the
same decisions a live run makes — so a baseline's figures are exactly those of the
equivalent plan. The **oracle router** sends each problem to the cheapest of a set of routes
that answers it right (the cheapest route of all when none does): the accuracy no router
over those routes can beat, at the least cost that accuracy needs problem by problem.

Cost ratios are relative to the *reference*: the largest model (by parameters) answering
greedily, on the same problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from cascadec.compiler import compile_spec_data, plan_registry
from cascadec.errors import DataError
from cascadec.plan import Plan, PlanStrategy, seal
from cascadec.registry import ModelRegistry
from cascadec.runtime.data import Problem
from cascadec.runtime.equivalence import Equivalence
from cascadec.sim.bank import coverage
from cascadec.sim.simulate import Simulation, simulate
from cascadec.spec.model import SPEC_VERSION, Defaults, Spec, StrategySpec, TierSpec

DEFAULT_VOTE_TEMPERATURE = 0.7  # a bank without a temperature column serves any temperature


class BaselineKind(StrEnum):
    GREEDY = "greedy"  # one sample at temperature 0
    VOTE = "vote"  # majority vote over k samples at a temperature > 0
    ORACLE = "oracle"  # per problem, the cheapest route that answers right


@dataclass(frozen=True)
class Route:
    """One baseline configuration: a model answering greedily or by a k-vote at a temperature."""

    kind: BaselineKind
    model: str  # key into Plan.models
    alias: str
    k: int
    temperature: float
    params: float

    @property
    def name(self) -> str:
        if self.kind is BaselineKind.GREEDY:
            return f"{self.alias} greedy"
        return f"{self.alias} vote@{self.k} T{self.temperature:g}"


@dataclass(frozen=True)
class Oracle:
    """Per problem: right (1/0, NaN ungraded), cost, and the index of the route it took."""

    correct: np.ndarray
    cost: np.ndarray
    route: np.ndarray


@dataclass
class Baselines:
    """Every baseline's per-problem outcomes on a bank, the reference and the oracle router."""

    routes: list[Route]
    simulation: Simulation
    reference: int  # index of the largest model's greedy route
    oracle: Oracle

    @property
    def problems(self) -> list[Problem]:
        return self.simulation.problems

    @property
    def correct(self) -> np.ndarray:  # [R, P]: 1, 0, NaN without gold
        return self.simulation.outcome.correct

    @property
    def cost(self) -> np.ndarray:  # [R, P]
        return self.simulation.outcome.cost

    @property
    def reference_cost(self) -> float:
        return float(self.cost[self.reference].sum())

    def rows(self) -> list[dict]:
        """One row per baseline then the oracle: accuracy, total cost, cost ratio to the reference."""
        ref = self.reference_cost
        out = []
        for r, route in enumerate(self.routes):
            out.append(
                _row(
                    route.name,
                    route.kind,
                    route.alias,
                    route.k,
                    route.temperature,
                    self.correct[r],
                    self.cost[r],
                    ref,
                )
            )
        o = self.oracle
        out.append(_row("oracle", BaselineKind.ORACLE, None, None, None, o.correct, o.cost, ref))
        return out


def _row(name, kind, model, k, temperature, correct, cost, ref) -> dict:
    return {
        "name": name,
        "kind": str(kind),
        "model": model,
        "k": k,
        "temperature": temperature,
        "accuracy": accuracy(correct),
        "cost": float(np.sum(cost)),
        "cost_ratio": float(np.sum(cost)) / ref if ref > 0 else None,
    }


def accuracy(correct: np.ndarray) -> float | None:
    """Mean over graded problems (NaN: no gold); None when none is graded."""
    graded = np.asarray(correct, dtype=float)
    graded = graded[~np.isnan(graded)]
    return float(graded.mean()) if graded.size else None


def vote_ladder(max_k: int) -> list[int]:
    """k = 2, 4, 8, … ≤ max_k, and max_k itself (k = 1 at a temperature is not a vote)."""
    ks = {max_k} if max_k >= 2 else set()
    k = 2
    while k <= max_k:
        ks.add(k)
        k *= 2
    return sorted(ks)


def oracle_router(correct: np.ndarray, cost: np.ndarray) -> Oracle:
    """Per problem the cheapest route (row) that answers right, else the cheapest of all.

    ``correct`` and ``cost`` are [R, P]; the first of equally cheap routes wins. An ungraded
    problem (NaN) goes to the cheapest route and stays ungraded.
    """
    correct = np.asarray(correct, dtype=float)
    cost = np.asarray(cost, dtype=float)
    if correct.ndim != 2 or correct.shape != cost.shape or correct.shape[0] == 0:
        raise ValueError("oracle_router needs [routes, problems] arrays of the same shape, routes ≥ 1")
    right = correct == 1.0
    masked = np.where(right, cost, np.inf)
    any_right = right.any(axis=0)
    route = np.where(any_right, masked.argmin(axis=0), cost.argmin(axis=0))
    cols = np.arange(correct.shape[1])
    graded = ~np.isnan(correct).all(axis=0)
    out_correct = np.where(graded, any_right.astype(float), np.nan)
    return Oracle(correct=out_correct, cost=cost[route, cols], route=route)


def _aliases(plan: Plan) -> dict[str, str]:
    out = {}
    for s in plan.strategies:
        for t in s.tiers:
            if t.alias:
                out.setdefault(t.model, t.alias)
    return out


def baseline_routes(plan: Plan, bank: pd.DataFrame, ks: Sequence[int] | None = None) -> list[Route]:
    """The routes a bank can replay for the plan's models: greedy, and votes at ``ks`` (default:
    :func:`vote_ladder` of what every problem holds) per recorded temperature. Ordered by
    model size, then greedy before votes, then k."""
    by_path = {m.path: key for key, m in plan.models.items()}
    aliases = _aliases(plan)
    routes: list[Route] = []
    for c in coverage(bank):
        key = c.model if c.model in plan.models else by_path.get(c.model)
        if key is None:
            continue
        model = plan.models[key]
        alias = aliases.get(key, key)
        temps = [0.0, DEFAULT_VOTE_TEMPERATURE] if c.temperature is None else [c.temperature]
        for temp in temps:
            if temp == 0:
                routes.append(Route(BaselineKind.GREEDY, key, alias, 1, 0.0, model.params))
            elif not model.greedy_only:
                for k in vote_ladder(c.min_k) if ks is None else [k for k in ks if k <= c.min_k]:
                    routes.append(Route(BaselineKind.VOTE, key, alias, k, float(temp), model.params))
    routes = sorted(
        set(routes), key=lambda r: (r.params, r.model, r.kind is BaselineKind.VOTE, r.temperature, r.k)
    )
    if not routes:
        have = ", ".join(sorted({c.model for c in coverage(bank)})) or "nothing"
        raise DataError(f"the sample bank holds none of the plan's models (it has {have})")
    return routes


def one_tier_spec(template: PlanStrategy, model: str, k: int, temperature: float) -> Spec:
    """A one-tier spec over ``model`` (an alias or id) with the template's prompt, answer format,
    first-tier max_tokens and seed: greedy (``plain``) at k 1, T 0, else a k-vote (``mv``).
    Everything else (top_p, voting, online termination, budgets) is the compiler's default."""
    first = template.tiers[0]
    defaults = Defaults(
        max_tokens=first.max_tokens, prompt=template.prompt, answer=template.answer, seed=first.seed
    )
    tier = TierSpec(model=model, k=k, temperature=temperature)
    greedy = k == 1 and temperature == 0
    body = StrategySpec(plain=tier) if greedy else StrategySpec(mv=tier)
    return Spec(version=SPEC_VERSION, defaults=defaults, strategy=body)


def compile_one_tier(
    registry: ModelRegistry, template: PlanStrategy, model: str, k: int, temperature: float, key: str
) -> PlanStrategy:
    """:func:`one_tier_spec` compiled like any spec (checked, sealed), keyed ``key``."""
    spec = one_tier_spec(template, model, k, temperature)
    compiled, _ = compile_spec_data(spec, registry, source=key)
    return compiled.strategies[0].model_copy(update={"key": key})  # a label: names may hold spaces


def route_strategy(route: Route, plan: Plan, registry: ModelRegistry | None = None) -> PlanStrategy:
    """The one-tier strategy of a route over the plan's models (:func:`plan_registry`), with the
    prompt, answer format and first-tier defaults of the plan's first strategy."""
    reg = registry or plan_registry(plan)
    return compile_one_tier(reg, plan.strategies[0], route.alias, route.k, route.temperature, route.name)


def baselines_plan(plan: Plan, routes: Sequence[Route]) -> Plan:
    """A plan of every route's one-tier strategy over the plan's models."""
    registry = plan_registry(plan)
    strategies = tuple(route_strategy(r, plan, registry) for r in routes)
    return seal(Plan(models=dict(plan.models), strategies=strategies, source="baselines"))


def compute_baselines(
    plan: Plan,
    bank: pd.DataFrame,
    problems: list[Problem],
    *,
    equivalence: Equivalence | None = None,
    ks: Sequence[int] | None = None,
) -> Baselines:
    """Simulate every baseline route of ``plan``'s models on ``bank`` over ``problems``.

    ``plan`` supplies the models (costs, aliases) and the prompt/answer format of its first
    strategy. The reference is the largest model the bank holds greedily.
    """
    routes = baseline_routes(plan, bank, ks)
    greedy = [i for i, r in enumerate(routes) if r.kind is BaselineKind.GREEDY]
    if not greedy:
        raise DataError("the sample bank has no greedy (temperature 0) samples: no reference model")
    reference = max(greedy, key=lambda i: routes[i].params)
    sim = simulate(baselines_plan(plan, routes), bank, problems, equivalence=equivalence)
    oracle = oracle_router(sim.outcome.correct, sim.outcome.cost)
    return Baselines(routes=routes, simulation=sim, reference=reference, oracle=oracle)
