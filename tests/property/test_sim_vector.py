"""The vectorised simulator makes exactly the runtime's decisions (replay backend, same bank).

Generated plans cover thresholds on every signal, early stopping under every rule, every vote
policy (every metric, softmax or raw weights), retries (also at another temperature), explorations
(skip to the top, raise the temperature), sample and cost budgets, adaptive k with cost-aware
tier skipping and a start tier per difficulty, and every
final-answer policy. (Strategies the arrays do not model run through the runtime inside
``simulate``: the equality must hold for them too.)
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cascadec.api import prepare
from cascadec.errors import CascadecError, DataError
from cascadec.plan import AdaptiveK, Budget, EarlyStop, Exploration, PlanRoute, PlanVote, RetryRule
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.session import execute
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.sim.arrays import build_arrays
from cascadec.sim.simulate import problems_for, simulate
from cascadec.sim.sweep import sweepable
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems
from cascadec.sim.vector import REASONS, OutcomeArrays, simulate_vector
from cascadec.spec.vote import ConfidenceMetric, StopRule, VotePolicy
from tests.property.routers import synthetic_router

PROBLEMS = synthetic_problems(14, seed=3)
BANK = synthetic_bank(PROBLEMS, k=16, seed=3)
# external scores (a verifier) on every model, a recorded API cost on the largest one
SCORED = synthetic_bank(PROBLEMS, k=16, seed=3, scores=True, costs=True)
BANKS = st.sampled_from([BANK, SCORED])

CONDITIONS = [
    "agreement < 0.75",
    "agreement < 1.0 or mean_logprob < -0.2",
    "margin <= 0.25",
    "entropy > 0.6",
    "no_answer > 0.25 or agreement < 0.5",
    "not (agreement >= 0.5 and token_entropy < 1.0)",
    "tokens > 60 and k >= 2",
    "mean_logprob < -0.1",
    "true",
    "false",
    "weighted_agreement < 0.8",
    "hybrid < 0.9 or lowest_group_conf < 0.5",
    "score_mean < 0.6",
    "score_max < 0.9 or agreement < 0.75",
    "winner_score < 0.55",
    "agrees_prev < 1",
    "agrees_prev < 1 or agreement < 0.5",
    "not (agrees_prev >= 1) and score_mean < 0.9",
    "router_p < 0.6",
    "router_p < 0.9 or agreement < 0.75",
]


@st.composite
def tiers(draw):
    n = draw(st.integers(1, 3))
    models = sorted(
        draw(st.lists(st.sampled_from(list(SYNTHETIC_MODELS)), min_size=n, max_size=n)),
        key=SYNTHETIC_MODELS.get,
    )
    out = []
    for i, m in enumerate(models):
        last = i == n - 1
        greedy = last and draw(st.booleans())
        retry = None
        if draw(st.booleans()):
            retry = RetryRule(
                max=draw(st.integers(1, 2)),
                when=draw(st.sampled_from(CONDITIONS)),
                extra_k=draw(st.integers(1, 3)),
                temperature=draw(st.sampled_from([None, 1.0])),
            )
        explore = None
        if not last and draw(st.booleans()):
            action = draw(st.sampled_from(["skip_to_top", "raise_temperature"]))
            explore = Exploration(
                when=draw(st.sampled_from(CONDITIONS)),
                action=action,
                temperature=1.0 if action == "raise_temperature" else None,
                extra_k=draw(st.integers(0, 3)),
            )
        out.append(
            tier(
                m,
                1 if greedy else draw(st.integers(1, 4)),
                0.0 if greedy else 0.7,
                escalate_if=None if last else draw(st.sampled_from(CONDITIONS)),
                retry=None if greedy else retry,
                explore=explore,
                cost=SYNTHETIC_MODELS[m],
            )
        )
    return out


@st.composite
def strategies_(draw, key):
    ts = draw(tiers())
    budget = None
    if draw(st.booleans()):
        budget = Budget(
            max_samples_per_problem=draw(st.one_of(st.none(), st.integers(2, 12))),
            max_cost_per_problem=draw(st.one_of(st.none(), st.sampled_from([300.0, 1500.0, 8000.0]))),
        )
    adaptive = None
    starts = draw(st.one_of(st.just(()), st.sampled_from([((0.4, 0), (0.8, 1)), ((0.5, 1), (1.0, 2))])))
    if ts[0].temperature > 0 and draw(st.booleans()):
        adaptive = AdaptiveK(
            policy="difficulty_buckets",
            buckets=((0.3, 1), (0.7, 2), (1.0, 4)),
            escalation_k_threshold=draw(st.one_of(st.none(), st.just(4))),
            start_tiers=starts,
        )
    elif starts:  # a start tier per difficulty only: greedy first tiers too
        adaptive = AdaptiveK(policy="difficulty_buckets", start_tiers=starts)
    return strategy(
        key,
        ts,
        final_answer=draw(st.sampled_from(["last_tier", "most_confident", "pooled"])),
        early_stop=EarlyStop(
            round_size=draw(st.integers(1, 3)),
            rule=draw(st.sampled_from(list(StopRule))),
            confidence=draw(st.sampled_from([0.8, 0.9, 0.95])),
        )
        if draw(st.booleans())
        else None,
        vote=PlanVote(
            policy=draw(st.sampled_from(list(VotePolicy))),
            metric=draw(st.sampled_from(list(ConfidenceMetric))),
            temperature=draw(st.sampled_from([None, 0.01, 0.2])),
        )
        if draw(st.booleans())
        else None,
        budget=budget,
        adaptive_k=adaptive,
        route=route_for(draw, ts),
    )


def route_for(draw, tiers_) -> PlanRoute | None:
    """A learned route over the synthetic router (trained on a synthetic bank: text and
    difficulty), or None; always one (policy none at least) when a condition reads router_p."""
    texts = [t.escalate_if for t in tiers_]
    texts += [t.retry.when for t in tiers_ if t.retry] + [t.explore.when for t in tiers_ if t.explore]
    reads = any(c and "router_p" in c for c in texts)
    policy = draw(st.sampled_from(["threshold", "expected_cost", "none", None]))
    if policy is None and not reads:
        return None
    router, path = synthetic_router()
    return PlanRoute(
        router=str(path),
        hash=router.hash,
        policy=policy or "none",
        tau=draw(st.sampled_from([0.3, 0.6, 0.85, 0.97])) if policy == "threshold" else None,
        cost_weight=draw(st.sampled_from([0.0, 0.2, 1.0])) if policy == "expected_cost" else None,
        heads=tuple(router.head_for(t.model, t.temperature, t.k) for t in tiers_),
        columns=router.vectoriser.numeric,
    )


@st.composite
def plans(draw):
    n = draw(st.integers(1, 3))
    return make_plan([draw(strategies_(f"s{i}")) for i in range(n)], SYNTHETIC_MODELS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), BANKS)
def test_vector_simulation_equals_replay_run(plan, bank):
    assert_equals_replay(plan, bank)


def assert_equals_replay(plan, bank=BANK):
    eq = Equivalence("exact")
    table = PROBLEMS.merge(
        __import__("pandas").DataFrame({"strategy": [s.key for s in plan.strategies]}), how="cross"
    )
    try:
        prepared = prepare(plan, table, strategy_column="strategy")
    except CascadecError:  # a plan the static checks refuse never runs
        assume(False)
    rows, _, _, _ = execute(prepared, ReplayBackend(bank), out=None, equivalence=eq)
    sim = simulate(plan, bank, problems_for(plan, PROBLEMS), equivalence=eq)
    o = sim.outcome
    assert sim.exact_problems == 0
    by = {(r.id, r.strategy): r for r in rows.itertuples(index=False)}
    for c, s in enumerate(plan.strategies):
        for j, pid in enumerate(PROBLEMS["id"]):
            r = by[(pid, s.key)]
            where = f"{s.key} on {pid}"
            assert o.correct[c, j] == float(bool(r.correct)), where
            assert o.samples[c, j] == r.samples, where
            assert o.tokens[c, j] == r.tokens, where
            assert round(float(o.cost[c, j]), 6) == r.cost, where
            assert o.tiers_used[c, j] == r.tiers_used, where
            assert REASONS[o.reason[c, j]] == r.stop_reason, where


def test_missing_bank_samples_are_a_clear_error():
    plan = make_plan([strategy("big", [tier("S", 17)])], SYNTHETIC_MODELS)

    with pytest.raises(DataError, match="lacks samples"):
        simulate(plan, BANK, problems_for(plan, PROBLEMS), equivalence=Equivalence("exact"))


def test_unknown_temperature_is_a_clear_error():
    plan = make_plan([strategy("hot", [tier("S", 2, 1.3)])], SYNTHETIC_MODELS)

    with pytest.raises(DataError, match="temperature 1.3"):
        simulate(plan, BANK, problems_for(plan, PROBLEMS), equivalence=Equivalence("exact"))


def test_outcome_shapes():
    plan = make_plan(
        [strategy("a", [tier("S", 2, escalate_if="agreement < 1.0"), tier("L", 1, 0.0)])], SYNTHETIC_MODELS
    )
    sim = simulate(plan, BANK, problems_for(plan, PROBLEMS), equivalence=Equivalence("exact"))
    assert sim.outcome.correct.shape == (1, len(PROBLEMS))
    s = sim.summary(0)
    assert set(s) >= {"accuracy", "cost", "samples", "escalation_rates"}
    assert 0 <= s["escalation_rates"][0] <= 1
    assert np.all(sim.outcome.reached[0, :, 0])


def test_problems_left_to_the_runtime_get_the_same_outcomes():
    """A problem whose answers are not a clean equivalence partition goes through the runtime itself."""
    plan = make_plan(
        [
            strategy(
                "a",
                [
                    tier("S", 3, escalate_if="agreement < 1.0"),
                    tier("M", 2, escalate_if="margin < 0.5"),
                    tier("L", 1, 0.0),
                ],
                final_answer="pooled",
            )
        ],
        SYNTHETIC_MODELS,
    )
    eq = Equivalence("exact")
    problems = problems_for(plan, PROBLEMS)
    fast = simulate(plan, BANK, problems, equivalence=eq)
    arrays = build_arrays(BANK, problems, plan, eq)
    arrays.exact_only[::2] = True
    mixed = simulate(plan, BANK, problems, equivalence=eq, arrays=arrays)
    assert mixed.exact_problems == (len(problems) + 1) // 2
    for field in ("correct", "cost", "samples", "tokens", "tiers_used", "reason", "reached"):
        assert np.allclose(getattr(fast.outcome, field), getattr(mixed.outcome, field)), field


# --- the sweep (tier-local fast path) against the general machine and replay ------------------
SWEEP_CONDITIONS = [
    c for c in CONDITIONS if not any(w in c for w in ("weighted", "hybrid", "prev", "router_p"))
] + [f"agreement < {a} or mean_logprob < {lp}" for a in (0.5, 0.75, 1.0) for lp in (-0.2, -0.05)]


@st.composite
def sweep_plans(draw):
    """Families of threshold variants on a few tier chains, as a sweep generates them."""
    out = []
    for chain in range(draw(st.integers(1, 2))):
        n = draw(st.integers(1, 3))
        models = sorted(
            draw(st.lists(st.sampled_from(list(SYNTHETIC_MODELS)), min_size=n, max_size=n)),
            key=SYNTHETIC_MODELS.get,
        )
        ks = [draw(st.integers(1, 5)) for _ in models]
        greedy = draw(st.booleans())
        round_size = draw(st.one_of(st.none(), st.integers(1, 3)))
        final = draw(st.sampled_from(["last_tier", "most_confident"]))
        for v in range(draw(st.integers(1, 3))):
            tiers_ = []
            for i, (m, k) in enumerate(zip(models, ks, strict=True)):
                last = i == n - 1
                cond = None if last else draw(st.one_of(st.none(), st.sampled_from(SWEEP_CONDITIONS)))
                g = last and greedy
                tiers_.append(
                    tier(m, 1 if g else k, 0.0 if g else 0.7, escalate_if=cond, cost=SYNTHETIC_MODELS[m])
                )
            out.append(
                strategy(
                    f"c{chain}v{v}",
                    tiers_,
                    final_answer=final,
                    early_stop=EarlyStop(round_size=round_size) if round_size else None,
                )
            )
    return make_plan(out, SYNTHETIC_MODELS)


def assert_same_outcome(a: OutcomeArrays, b: OutcomeArrays) -> None:
    for name in OutcomeArrays.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep_plans(), BANKS)
def test_sweep_equals_the_general_machine(plan, bank):
    assert all(sweepable(s) for s in plan.strategies)
    arrays = build_arrays(bank, problems_for(plan, PROBLEMS), plan, Equivalence("exact"))
    fast = simulate_vector(plan.strategies, arrays)
    assert_same_outcome(fast, simulate_vector(plan.strategies, arrays, general_only=True))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep_plans(), BANKS)
def test_sweep_equals_replay_run(plan, bank):
    assert_equals_replay(plan, bank)


def test_agrees_prev_is_simulated_on_the_arrays_and_moves_decisions():
    """A second-opinion ladder: escalate when the second model disagrees with the first."""
    plan = make_plan(
        [
            strategy(
                "second",
                [
                    tier("S", 1, 0.0, escalate_if="true"),
                    tier("M", 1, 0.0, escalate_if="agrees_prev < 1"),
                    tier("L", 1, 0.0),
                ],
            ),
            strategy(
                "always",
                [
                    tier("S", 1, 0.0, escalate_if="true"),
                    tier("M", 1, 0.0, escalate_if="true"),
                    tier("L", 1, 0.0),
                ],
            ),
        ],
        SYNTHETIC_MODELS,
    )
    assert not any(sweepable(s) for s in plan.strategies[:1])  # it reads the tier before: the machine
    sim = simulate(plan, SCORED, problems_for(plan, PROBLEMS), equivalence=Equivalence("exact"))
    assert sim.exact_problems == 0
    reached_top = sim.outcome.reached[:, :, 2].sum(axis=1)
    assert reached_top[1] == len(PROBLEMS) and 0 < reached_top[0] < len(PROBLEMS)
    assert_equals_replay(plan, SCORED)


def test_recorded_costs_replace_token_prices():
    plan = make_plan([strategy("top", [tier("L", 2)])], SYNTHETIC_MODELS)
    eq = Equivalence("exact")
    plain = simulate(plan, BANK, problems_for(plan, PROBLEMS), equivalence=eq).outcome.cost
    priced = simulate(plan, SCORED, problems_for(plan, PROBLEMS), equivalence=eq).outcome.cost
    recorded = SCORED[
        (SCORED["model"] == "L") & (SCORED["temperature"] == 0.7) & (SCORED["sample_index"] < 2)
    ]
    expected = recorded.groupby("problem_id", sort=False)["cost"].sum()
    np.testing.assert_allclose(priced[0], [expected[p] for p in PROBLEMS["id"]])
    assert not np.allclose(plain, priced)


@pytest.mark.parametrize("escalate", ["false", "true", "agreement < 1.0"])
def test_sweep_reports_missing_samples_as_the_machine_does(escalate):
    """Only a tier a problem reaches needs its samples; the error names the same sample."""
    thin = BANK[~((BANK["model"] == "M") & (BANK["sample_index"] >= 1))]
    plan = make_plan(
        [
            strategy("ok", [tier("S", 2, escalate_if="agreement < 0.5"), tier("L", 1, 0.0)]),
            strategy("thin", [tier("S", 2, escalate_if=escalate), tier("M", 3)]),
        ],
        SYNTHETIC_MODELS,
    )
    arrays = build_arrays(thin, problems_for(plan, PROBLEMS), plan, Equivalence("exact"))
    results = []
    for general_only in (False, True):
        try:
            results.append(simulate_vector(plan.strategies, arrays, general_only=general_only))
        except DataError as e:
            results.append(str(e))
    if escalate == "false":
        assert_same_outcome(*results)
    else:
        assert results[0] == results[1] and "lacks samples for model 'M'" in results[0]


@pytest.mark.parametrize("policy", ["threshold", "expected_cost"])
def test_routed_strategies_start_where_the_router_says(policy):
    """A learned route sends problems to different first tiers, simulated as replayed; the
    machine's array version of the start rule is plan.route_start problem for problem."""
    from cascadec.plan import route_start, tier_probabilities
    from cascadec.runtime.router_features import attach_routes
    from cascadec.sim.machine import route_starts

    tiers_ = [
        tier("S", 2, escalate_if="agreement < 1.0 or router_p < 0.5", cost=1.0),
        tier("M", 2, escalate_if="agreement < 1.0", cost=4.0),
        tier("L", 1, 0.0, cost=30.0),
    ]
    router, path = synthetic_router()
    route = PlanRoute(
        router=str(path),
        hash=router.hash,
        policy=policy,
        tau=0.8 if policy == "threshold" else None,
        cost_weight=0.3 if policy == "expected_cost" else None,
        heads=tuple(router.head_for(t.model, t.temperature, t.k) for t in tiers_),
        columns=router.vectoriser.numeric,
    )
    plan = make_plan([strategy("routed", tiers_, route=route)], SYNTHETIC_MODELS)
    problems = attach_routes(plan.strategies, problems_for(plan, PROBLEMS))
    s = plan.strategies[0]
    starts = [route_start(s, tier_probabilities(s, p.features)) for p in problems]
    assert len(set(starts)) > 1, starts  # the router tells problems apart
    assert route_starts(s, problems).tolist() == starts
    sim = simulate(plan, BANK, problems_for(plan, PROBLEMS), equivalence=Equivalence("exact"))
    first = sim.outcome.reached[0].argmax(axis=1)
    assert first.tolist() == starts
    assert_equals_replay(plan, BANK)
