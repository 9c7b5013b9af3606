"""Token, group, tail confidence (DeepConf) and the voting policies built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadec.runtime.confidence import (
    bottom_groups,
    group_confidences,
    lowest_group,
    percentile,
    running_group_confidence,
    tail_confidence,
    token_confidence,
    trace_confidence,
)
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.vote_policy import apply_policy, kept_positions, softmax_weights
from cascadec.runtime.voting import Ballot, tally
from cascadec.spec.vote import ConfidenceMetric, VotePolicy, VoteSpec

confs = st.lists(st.floats(0, 20, allow_nan=False), min_size=1, max_size=60)


def test_token_confidence_is_minus_mean_of_top_l():
    assert token_confidence([-0.1, -2.0, -3.9]) == pytest.approx(2.0)
    # the sampled token outside the top 2 is dropped with top_l=2
    assert token_confidence([-0.5, -1.5, -9.0], top_l=2) == pytest.approx(1.0)
    assert token_confidence([float("-inf"), -1.0, None]) == 1.0
    assert token_confidence([]) == 0.0


@given(confs, st.integers(1, 10))
def test_groups_are_sliding_window_means(c, window):
    groups = group_confidences(c, window)
    if len(c) <= window:
        assert groups == [pytest.approx(sum(c) / len(c))]
    else:
        brute = [sum(c[i : i + window]) / window for i in range(len(c) - window + 1)]
        assert groups == pytest.approx(brute)
    assert lowest_group(c, window) == pytest.approx(min(groups))
    assert min(groups) - 1e-9 <= bottom_groups(c, window) <= sum(groups) / len(groups) + 1e-9


def test_trace_summaries():
    c = [5, 5, 5, 5, 1, 1, 5, 5, 5, 5]
    t = trace_confidence(c, window=2, tail=3)
    assert t.mean == pytest.approx(4.2) and t.lowest_group == 1.0 and t.tail == 5.0
    assert t.bottom10 == 1.0  # 9 groups -> the lowest one
    assert t.get(ConfidenceMetric.TAIL) == t.get("tail") == 5.0
    assert tail_confidence(c, 100) == pytest.approx(4.2)
    assert trace_confidence(None) is None and trace_confidence([]) is None
    assert trace_confidence([float("nan")]) is None


def test_running_group_waits_for_a_full_window():
    assert running_group_confidence([3.0, 3.0], window=3) is None
    assert running_group_confidence([9.0, 1.0, 2.0, 3.0], window=3) == pytest.approx(2.0)


@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30), st.floats(0, 100))
def test_percentile_matches_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-9)


def test_bad_parameters_are_errors():
    with pytest.raises(ValueError, match="window"):
        group_confidences([1.0], 0)
    with pytest.raises(ValueError, match="share"):
        bottom_groups([1.0], share=0)
    with pytest.raises(ValueError, match="keep"):
        kept_positions([1.0], 1.5)


# --- voting policies -------------------------------------------------------------------------
EQ = Equivalence("exact")


def vote(answers, confidences, **spec):
    v = tally([Ballot(a) for a in answers], EQ)
    traces = [None if c is None else trace_confidence([c]) for c in confidences]
    return v, apply_policy(v, traces, VoteSpec(**{"metric": "lowest_group", **spec}))


def test_majority_is_the_tally():
    v, w = vote(["1", "2", "2", None], [1, 1, 1, 1])
    assert w.winner == v.winner == "2" and w.share == 0.5 == v.top / v.drawn
    assert w.applied is VotePolicy.MAJORITY


def test_weighted_lets_confident_traces_win():
    v, w = vote(["7", "7", "3", "3", "3"], [9, 8, 1, 1, 1], policy="weighted")
    assert v.winner == "3" and w.winner == "7"
    assert w.share == pytest.approx(17 / 20) and w.weights() == {"7": 17.0, "3": 3.0}


def test_filtered_keeps_the_most_confident_share():
    v, w = vote(["3", "7", "3", "7", "3"], [1, 5, 2, 6, 0.5], policy="filtered", keep=0.4)
    assert w.kept == (1, 3) and w.winner == "7" and w.share == 1.0
    # equal confidences: the earlier sample is kept
    assert kept_positions([1, 1, 1], 0.5) == (0, 1)


def test_non_answering_confident_samples_lower_the_share():
    _, w = vote(["7", None], [1, 3], policy="weighted")
    assert w.winner == "7" and w.share == pytest.approx(0.25)


def test_ties_weight_then_votes_then_earliest():
    _, w = vote(["a", "b", "b"], [2, 1, 1], policy="weighted")
    assert w.winner == "b"  # equal weight 2: more votes
    _, w = vote(["a", "b"], [1, 1], policy="weighted")
    assert w.winner == "a"  # equal weight and votes: earliest


def test_missing_confidence_falls_back_to_majority():
    v, w = vote(["7", "3", "3"], [9, None, 1], policy="weighted")
    assert w.applied is VotePolicy.MAJORITY and w.winner == v.winner == "3"


@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=12))
def test_equal_weights_vote_like_majority(answers):
    v, w = vote(answers, [2.0] * len(answers), policy="weighted")
    assert w.winner == v.winner
    assert math.isclose(w.share, v.top / v.drawn)


# --- logprob weights (the default metric): a softmax over each trace's mean logprob ----------
def lp_vote(answers, logprobs, **spec):
    v = tally([Ballot(a) for a in answers], EQ)
    return v, apply_policy(v, [None] * len(answers), VoteSpec(**spec), logprobs)


def test_logprob_weights_are_a_softmax_at_temperature_0_01():
    assert VoteSpec().metric is ConfidenceMetric.LOGPROB and VoteSpec().softmax_temperature() == 0.01
    assert VoteSpec(metric="tail").softmax_temperature() is None
    assert softmax_weights([-0.01, -0.02, -0.01], 0.01) == pytest.approx([1.0, math.exp(-1), 1.0])
    assert softmax_weights([2.0, 0.5], None) == [2.0, 0.5]  # raw token confidences


def test_two_sure_traces_outvote_three_unsure_ones():
    v, w = lp_vote(["7", "7", "3", "3", "3"], [-0.001, -0.002, -0.05, -0.06, -0.04], policy="weighted")
    assert v.winner == "3" and w.winner == "7" and w.applied is VotePolicy.WEIGHTED
    # a hot softmax is majority again
    _, w = lp_vote(
        ["7", "7", "3", "3", "3"], [-0.001, -0.002, -0.05, -0.06, -0.04], policy="weighted", temperature=10
    )
    assert w.winner == "3"


def test_logprob_metric_needs_every_logprob():
    v, w = lp_vote(["7", "3", "3"], [-0.001, None, -0.5], policy="weighted")
    assert w.applied is VotePolicy.MAJORITY and w.winner == v.winner == "3"
    v = tally([Ballot("7"), Ballot("3")], EQ)
    assert apply_policy(v, [None, None], VoteSpec(policy="weighted")).applied is VotePolicy.MAJORITY
    with pytest.raises(ValueError, match="logprobs"):
        apply_policy(v, [None, None], VoteSpec(policy="weighted"), [-0.1])


def test_filtered_by_logprob_keeps_the_surest():
    _, w = lp_vote(["3", "7", "3", "7"], [-0.5, -0.01, -0.4, -0.02], policy="filtered", keep=0.5)
    assert w.kept == (1, 3) and w.winner == "7" and w.share == 1.0


logprob_ = st.floats(-3.0, 0.0, allow_nan=False)


@given(
    st.lists(st.tuples(st.sampled_from(["1", "2", "3", None]), logprob_), min_size=1, max_size=12),
    st.floats(-2.0, 2.0),
    st.sampled_from([0.003, 0.01, 0.1, 1.0]),
)
def test_logprob_weights_do_not_depend_on_a_common_shift(samples, shift, temperature):
    answers = [a for a, _ in samples]
    lps = [lp for _, lp in samples]
    _, w = lp_vote(answers, lps, policy="weighted", temperature=temperature)
    _, shifted = lp_vote(answers, [lp + shift for lp in lps], policy="weighted", temperature=temperature)
    assert math.isclose(w.share, shifted.share, abs_tol=1e-9)
    weights = [c.weight for c in w.clusters]
    if len(weights) < 2 or weights[0] - weights[1] > 1e-9:  # not a tie up to rounding
        assert w.winner == shifted.winner
    assert 0.0 <= w.share <= 1.0 and all(0 <= c.weight <= c.count for c in w.clusters)


@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=12), logprob_)
def test_equal_logprobs_vote_like_majority(answers, lp):
    v, w = lp_vote(answers, [lp] * len(answers), policy="weighted")
    assert math.isclose(w.share, v.top / v.drawn)
    counts = sorted((c.count for c in v.clusters), reverse=True)
    if len(counts) < 2 or counts[0] > counts[1]:  # equal weights: a count tie goes to the earliest
        assert w.winner == v.winner


@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), logprob_), min_size=1, max_size=12))
def test_the_surest_trace_wins_at_a_cold_temperature(samples):
    answers = [a for a, _ in samples]
    lps = [lp for _, lp in samples]
    _, w = lp_vote(answers, lps, policy="weighted", temperature=1e-6)
    best = max(lps)  # a trace 1e-4 below the best weighs exp(-100): it cannot outvote it
    assert any(lp >= best - 1e-4 for a, lp in samples if a == w.winner)
