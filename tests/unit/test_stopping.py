"""Early-stopping rules of a vote: exact, Adaptive-Consistency, ESC, confidence-weighted."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadec.api import execute, prepare
from cascadec.plan import EarlyStop, PlanVote
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.confidence import trace_confidence
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.stopping import (
    beta_cdf,
    effective_voters,
    esc_agrees,
    leader_probability,
    should_stop,
    weighted_pseudo_counts,
)
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier
from cascadec.runtime.vote_policy import apply_policy
from cascadec.runtime.voting import Ballot, tally
from cascadec.spec.vote import EarlyStopFields, VoteSpec

EQ = Equivalence("exact")


@given(st.integers(1, 40), st.integers(1, 40))
def test_beta_cdf_at_half_is_a_binomial_tail(a, b):
    n = a + b - 1
    exact = sum(math.comb(n, j) for j in range(a, n + 1)) / 2**n
    assert beta_cdf(0.5, a, b) == pytest.approx(exact, abs=1e-10)


def test_leader_probability():
    assert leader_probability([]) == 0.0
    assert leader_probability([4]) == pytest.approx(1 - 0.5**5)
    assert leader_probability([2, 2]) == pytest.approx(0.5)
    assert leader_probability([5, 1]) == pytest.approx(0.9375)
    assert leader_probability([3, 1]) < leader_probability([6, 2]) < leader_probability([12, 4])
    three = leader_probability([6, 1, 1])
    assert three == leader_probability([1, 6, 1])  # order does not matter; seeded: replayable
    assert 0.9 < three < 0.99


def votes(answers, confidences=None):
    v = tally([Ballot(a) for a in answers], EQ)
    traces = [trace_confidence([c]) for c in (confidences or [1.0] * len(answers))]
    return v, apply_policy(v, traces, VoteSpec(policy="weighted", metric="lowest_group"))


@pytest.mark.parametrize(
    ("rule", "answers", "remaining", "stops"),
    [
        ("decided", ["1", "1", "1"], 2, True),
        ("decided", ["1", "1", "2"], 1, False),
        ("adaptive", ["1"] * 4, 4, True),  # 1 - 0.5^5 = 0.97
        ("adaptive", ["1"] * 3, 5, False),  # 0.94
        ("adaptive", ["1", "1", "1", "1", "2"], 3, False),
        ("esc", ["2", "1", "1", "1", "1"], 3, True),
        ("esc", ["1", "1", "1", None], 4, False),
        ("adaptive", ["1"] * 4, 0, False),  # nothing left to save
    ],
)
def test_rules(rule, answers, remaining, stops):
    v, w = votes(answers)
    assert should_stop(EarlyStopFields(rule=rule), v, w, remaining) is stops


def test_weighted_rule_follows_confidence():
    settings = EarlyStopFields(rule="weighted", confidence=0.9)
    # counts 4-2 do not reach 0.9 unweighted, but the four are far more confident
    v, w = votes(["1", "1", "2", "1", "2", "1"], [8, 8, 1, 8, 1, 8])
    assert not should_stop(EarlyStopFields(rule="adaptive", confidence=0.9), v, w, 2)
    assert should_stop(settings, v, w, 2)
    v, w = votes(["1", "1", "2", "1", "2", "1"], [1, 1, 4, 1, 4, 1])
    assert w.winner == "2" and not should_stop(settings, v, w, 2)  # 8 of 12: the same 4-2 doubt


def test_esc_window_needs_enough_samples():
    v, _ = votes(["1", "1"])
    assert not esc_agrees(v, 3) and esc_agrees(v, 2)


def test_unanimous_stop_at():
    assert EarlyStopFields(rule="adaptive").unanimous_stop_at() == 4
    assert EarlyStopFields(rule="adaptive", confidence=0.99).unanimous_stop_at() == 6
    assert EarlyStopFields(rule="esc", window=3).unanimous_stop_at() == 3
    assert EarlyStopFields(rule="decided").unanimous_stop_at() is None


# --- through the runtime, on the replay backend --------------------------------------------
def run(answers, confidences=None, **kw):
    plan = make_plan([strategy("s", [tier("M", 8)], **kw)], {"M": 1.0})
    problems = pd.DataFrame({"id": ["p"], "problem": ["?"], "answer": ["4"]})
    backend = ReplayBackend(
        bank_from_answers(
            {("M", "p"): answers}, confidences={("M", "p"): confidences} if confidences else None
        )
    )
    res, samples, _, _ = execute(prepare(plan, problems), backend, equivalence=EQ)
    return res.iloc[0], samples


def test_adaptive_stops_a_unanimous_tier_at_four():
    row, _ = run(["4"] * 8, early_stop=EarlyStop(rule="adaptive", round_size=2))
    assert row["samples"] == 4 and row["tiers"][0]["early_stopped"]
    row, _ = run(["4"] * 8, early_stop=EarlyStop(round_size=2))  # decided: 6-0 > 2 left
    assert row["samples"] == 6


def test_weighted_vote_changes_the_final_answer():
    answers = ["3", "4", "3", "4", "3", "4", "3", "3"]
    confidences = [1, 9, 1, 9, 1, 9, 1, 1]
    row, samples = run(answers, confidences)
    assert row["final_answer"] == "3"
    row, samples = run(answers, confidences, vote=PlanVote(policy="weighted", metric="lowest_group"))
    assert row["final_answer"] == "4" and row["correct"]
    t = row["tiers"][0]
    sig = t["signals"]
    assert sig["weighted_agreement"] == pytest.approx(27 / 32) and sig["agreement"] == 5 / 8
    assert sig["winner_conf"] == pytest.approx(9.0) and sig["confidence"] == pytest.approx(32 / 8)
    assert t["vote"] == "weighted" and [w["answer"] for w in t["weights"]] == ["4", "3"]
    assert list(samples["token_confidence"].iloc[1]) == [9.0] * 11


def test_without_token_records_confidence_signals_are_null():
    row, _ = run(["4"] * 8, vote=PlanVote(policy="weighted", metric="lowest_group"))
    sig = row["tiers"][0]["signals"]
    assert pd.isna(sig["confidence"]) and sig["weighted_agreement"] == 1.0
    assert row["tiers"][0]["vote"] == "majority" and row["tiers"][0]["weights"] is None


def test_a_run_with_token_records_replays_exactly_as_a_bank():
    from cascadec.runtime.backends.replay import bank_from_samples

    answers = ["3", "4", "3", "4", "3", "4", "3", "3"]
    confidences = [1.3, 9.1, 1.2, 8.7, 1.1, 9.4, 1.0, 1.5]
    kw = {
        "vote": PlanVote(policy="filtered", keep=0.5, metric="lowest_group"),
        "early_stop": EarlyStop(rule="weighted", round_size=1),
    }
    first, samples = run(answers, confidences, **kw)
    plan = make_plan([strategy("s", [tier("M", 8)], **kw)], {"M": 1.0})
    problems = pd.DataFrame({"id": ["p"], "problem": ["?"], "answer": ["4"]})
    again, _, _, _ = execute(
        prepare(plan, problems), ReplayBackend(bank_from_samples(samples)), equivalence=EQ
    )
    assert again.iloc[0]["tiers"][0]["signals"] == first["tiers"][0]["signals"]
    assert (
        again.iloc[0]["final_answer"] == first["final_answer"]
        and again.iloc[0]["samples"] == first["samples"]
    )


def test_the_simulator_replays_confidence_strategies_exactly():
    from cascadec.runtime.data import Problem
    from cascadec.sim.simulate import needs_token_records, simulate

    answers = ["3", "4", "3", "4", "3", "4", "3", "3"]
    confidences = [1.3, 9.1, 1.2, 8.7, 1.1, 9.4, 1.0, 1.5]
    kw = {
        "vote": PlanVote(policy="weighted", metric="lowest_group"),
        "early_stop": EarlyStop(rule="weighted", round_size=1),
    }
    s = strategy("s", [tier("M", 8)], **kw)
    assert needs_token_records(s) and not needs_token_records(strategy("m", [tier("M", 8)]))
    bank = bank_from_answers({("M", "p"): answers}, confidences={("M", "p"): confidences})
    sim = simulate(make_plan([s], {"M": 1.0}), bank, [Problem("p", "?", "4")], equivalence=EQ)
    row, _ = run(answers, confidences, **kw)
    assert sim.outcome.samples[0, 0] == row["samples"] and sim.outcome.correct[0, 0] == float(row["correct"])


# --- the weighted rule counts effective voters (Kish), not samples ------------------------------
def lp_votes(answers, logprobs):
    v = tally([Ballot(a) for a in answers], EQ)
    return v, apply_policy(v, [None] * len(answers), VoteSpec(policy="weighted"), logprobs)


def test_effective_voters():
    _, w = lp_votes(["1", "1", "2"], [-0.1, -0.1, -0.1])
    assert effective_voters(w) == pytest.approx(3.0)
    _, w = lp_votes(["1", "2", "2", "2"], [-0.001, -0.2, -0.2, -0.2])  # "1" weighs 1, each "2" e^-19.9
    assert effective_voters(w) == pytest.approx(1.0, abs=1e-6)
    assert weighted_pseudo_counts(w) == pytest.approx([1.0, 0.0], abs=1e-6)


def test_one_sure_trace_does_not_settle_a_weighted_vote_alone():
    # the weighted vote says "1", but it rests on one trace: the posterior of one vote, 0.75
    v, w = lp_votes(["1", "2", "2", "2"], [-0.001, -0.2, -0.2, -0.2])
    assert w.winner == "1" and not should_stop(EarlyStopFields(rule="weighted", confidence=0.8), v, w, 4)


@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=10), st.floats(-2.0, 0.0))
def test_with_equal_weights_the_weighted_rule_is_adaptive(answers, lp):
    v, w = lp_votes(answers, [lp] * len(answers))
    for level in (0.8, 0.9, 0.95):
        weighted_stop = should_stop(EarlyStopFields(rule="weighted", confidence=level), v, w, 3)
        assert weighted_stop == should_stop(EarlyStopFields(rule="adaptive", confidence=level), v, w, 3)
