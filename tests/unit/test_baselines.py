"""Baselines and the oracle router on synthetic banks: baselines are exactly the simulated
one-tier plans, and the oracle is right wherever any route is, at no more cost there."""

import math

import numpy as np
import pytest

from cascadec.errors import DataError
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.sim.baselines import BaselineKind, compute_baselines, oracle_router, vote_ladder
from cascadec.sim.simulate import problems_for, simulate
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems

EQ = Equivalence("exact")
COST = SYNTHETIC_MODELS


def cascades():
    return [
        strategy(
            f"cascade-{k}-{a}",
            [
                tier("S", k, escalate_if=f"agreement < {a}", cost=COST["S"]),
                tier("M", 4, escalate_if=f"agreement < {a}", cost=COST["M"]),
                tier("L", 1, 0.0, cost=COST["L"]),
            ],
        )
        for k in (2, 4, 8)
        for a in (0.75, 1.0)
    ] + [
        strategy("mv-M-8", [tier("M", 8, cost=COST["M"])]),
        strategy("L-greedy", [tier("L", 1, 0.0, cost=COST["L"])]),
    ]


PLAN = make_plan(cascades(), SYNTHETIC_MODELS)


@pytest.fixture(scope="module")
def setup():
    frame = synthetic_problems(300, seed=3)
    bank = synthetic_bank(frame, k=8, temperatures=(0.7,), seed=3)
    problems = problems_for(PLAN, frame)
    return bank, problems, compute_baselines(PLAN, bank, problems, equivalence=EQ)


def test_vote_ladder():
    assert vote_ladder(1) == []
    assert vote_ladder(8) == [2, 4, 8]
    assert vote_ladder(6) == [2, 4, 6]


def test_routes_cover_every_model_greedy_and_each_k(setup):
    _, _, base = setup
    names = [r.name for r in base.routes]
    for m in COST:
        assert f"{m} greedy" in names
        for k in (2, 4, 8):
            assert f"{m} vote@{k} T0.7" in names
    assert base.routes[base.reference].name == "L greedy"
    rows = base.rows()
    assert rows[-1]["kind"] == "oracle"
    assert rows[base.reference]["cost_ratio"] == pytest.approx(1.0)


def test_baselines_equal_simulate_of_equivalent_one_tier_plans(setup):
    bank, problems, base = setup
    ones = [
        strategy("S greedy", [tier("S", 1, 0.0, cost=COST["S"])]),
        strategy("M vote@4 T0.7", [tier("M", 4, 0.7, cost=COST["M"])]),
        strategy("L vote@8 T0.7", [tier("L", 8, 0.7, cost=COST["L"])]),
    ]
    sim = simulate(make_plan(ones, SYNTHETIC_MODELS), bank, problems, equivalence=EQ)
    names = [r.name for r in base.routes]
    for c, s in enumerate(ones):
        r = names.index(s.key)
        np.testing.assert_array_equal(base.correct[r], sim.outcome.correct[c])
        np.testing.assert_array_equal(base.cost[r], sim.outcome.cost[c])
        row = base.rows()[r]
        assert row["accuracy"] == pytest.approx(sim.summary(c)["accuracy"])
        assert row["cost"] == pytest.approx(sim.summary(c)["cost"])


def test_oracle_dominates_every_strategy(setup):
    bank, problems, base = setup
    sim = simulate(PLAN, bank, problems, equivalence=EQ)
    correct = np.vstack([base.correct, sim.outcome.correct])
    cost = np.vstack([base.cost, sim.outcome.cost])
    oracle = oracle_router(correct, cost)
    for r in range(correct.shape[0]):
        right = correct[r] == 1
        assert np.nanmean(oracle.correct) >= np.nanmean(correct[r])  # ≥ its accuracy
        assert oracle.cost[right].sum() <= cost[r][right].sum() + 1e-9  # ≤ its cost where it is right
    # the oracle over the baselines alone: ≥ every baseline's accuracy and cheaper than every
    # strategy that samples more than once per problem
    o = base.oracle
    for r in range(base.correct.shape[0]):
        assert np.nanmean(o.correct) >= np.nanmean(base.correct[r])
    for c, s in enumerate(sim.strategies):
        assert o.cost.sum() <= sim.outcome.cost[c].sum(), s.key
        assert np.nanmean(o.correct) >= np.nanmean(sim.outcome.correct[c]), s.key


def test_oracle_router_on_a_known_table():
    correct = np.array([[1, 0, 0, np.nan], [1, 1, 0, np.nan], [0, 1, 1, np.nan]], dtype=float)
    cost = np.array([[1, 1, 1, 1], [2, 2, 2, 2], [3, 0.5, 3, 3]], dtype=float)
    o = oracle_router(correct, cost)
    assert o.route.tolist() == [0, 2, 2, 0]
    assert o.cost.tolist() == [1, 0.5, 3, 1]
    assert o.correct[:3].tolist() == [1, 1, 1] and math.isnan(o.correct[3])
    with pytest.raises(ValueError):
        oracle_router(np.zeros((0, 3)), np.zeros((0, 3)))


def test_a_bank_without_the_plans_models_is_refused(setup):
    bank, problems, _ = setup
    other = make_plan([strategy("x", [tier("X", 1, 0.0)])], {"X": 1.0})
    with pytest.raises(DataError, match="holds none of the plan's models"):
        compute_baselines(other, bank, problems, equivalence=EQ)


def test_greedy_only_bank_has_no_votes(setup):
    bank, problems, _ = setup
    greedy = bank[bank["temperature"] == 0.0]
    base = compute_baselines(PLAN, greedy, problems, equivalence=EQ)
    assert {r.kind for r in base.routes} == {BaselineKind.GREEDY}
