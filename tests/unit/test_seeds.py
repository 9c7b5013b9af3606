"""The one seed rule (cascadec.core.seeds): what a sample's seed depends on, and what not."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadec.core.seeds import MAX_SAMPLE_INDEX, base_seed, request_seed, sample_seed

ids = st.text(min_size=1, max_size=20)
temps = st.floats(0, 2, allow_nan=False)


@given(st.integers(0, 2**32), ids, ids, temps)
def test_base_is_stable_and_leaves_room_for_every_index(seed, model, problem, temperature):
    base = base_seed(seed, model, problem, temperature)
    assert base == base_seed(seed, model, problem, temperature)
    assert 0 <= base < 2**30
    assert sample_seed(base, MAX_SAMPLE_INDEX) < 2**31  # a signed 32-bit seed in every backend


def test_every_input_of_the_rule_matters():
    base = base_seed(0, "m", "p", 0.7)
    others = [base_seed(1, "m", "p", 0.7), base_seed(0, "n", "p", 0.7), base_seed(0, "m", "q", 0.7)]
    others.append(base_seed(0, "m", "p", 1.0))
    assert base not in others
    assert base_seed(0, "m", "p", 0.7) == base_seed(0, "m", "p", 0.70000000001)  # as plans print it


@given(st.integers(0, 2**30 - 1), st.integers(0, 1000), st.integers(1, 64))
def test_rounds_draw_the_samples_of_one_request(base, first, n):
    """A request for samples f..f+n-1 gets the seeds that one request for all of them gives child i."""
    whole = [request_seed(base, 0) + i for i in range(first + n)]  # vLLM: child i uses s + i
    part = [request_seed(base, first) + i for i in range(n)]
    assert part == whole[first:]
    assert request_seed(None, first) is None


def test_index_out_of_range():
    with pytest.raises(ValueError, match="sample index"):
        sample_seed(0, -1)


def test_jobs_ask_paired_seeds_whatever_the_strategy_or_tier_position():
    """Asks carry the base seed of (spec seed, model, problem, temperature) and the first index:
    the same model on the same problem gets the same seeds as a vote, as a cascade's first tier,
    and as a cascade's second tier."""
    from cascadec.runtime.data import Problem
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.runtime.jobs import Job
    from cascadec.runtime.testing import strategy, tier

    problem = Problem(id="p1", problem="1+1=")
    eq = Equivalence("exact")
    vote = strategy("vote", [tier("big", 4)])
    cascade = strategy("cascade", [tier("small", 4, escalate_if="true"), tier("big", 4)])
    asked = Job(problem, vote, vote.tiers, eq).pending
    assert asked is not None and asked.first == 0
    assert asked.seed == base_seed(0, "big", "p1", 0.7)
    first = Job(problem, cascade, cascade.tiers, eq).pending
    assert first is not None and first.seed == base_seed(0, "small", "p1", 0.7)
    skipped = Job(problem, cascade, cascade.tiers[1:], eq).pending  # cost-aware skipping
    assert skipped is not None and (skipped.model, skipped.seed) == ("big", asked.seed)
