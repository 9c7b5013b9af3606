"""The decision rules (cascadec.runtime.rules) give the same answer on plain numbers as on arrays:
the runtime asks them one problem at a time, the simulator for every element at once."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadec.runtime import rules
from cascadec.runtime.outcomes import StopReason
from cascadec.runtime.rules import AfterTier

FLAGS = ("final", "escalate", "explore", "skip", "explore_fits", "retry", "retry_fits")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.booleans()] * len(FLAGS)), min_size=1, max_size=30))
def test_after_tier_on_numbers_equals_on_arrays(rows):
    one = [rules.after_tier(*row) for row in rows]
    assert all(isinstance(x, AfterTier) for x in one)
    columns = [np.array(col) for col in zip(*rows, strict=True)]
    assert rules.after_tier(*columns).tolist() == [int(x) for x in one]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),
            st.floats(0, 50),
            st.integers(0, 8),
            st.one_of(st.just(math.inf), st.integers(1, 30)),
            st.one_of(st.just(math.inf), st.floats(0.5, 50)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_budget_on_numbers_equals_on_arrays(rows):
    one = [rules.over_budget(*row) for row in rows]
    assert all(isinstance(x, bool) for x in one)
    columns = [np.array(col) for col in zip(*rows, strict=True)]
    assert rules.over_budget(*columns).tolist() == one


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9), st.integers(0, 4)), min_size=1
    )
)
def test_rounds_and_early_stop_on_numbers_equal_on_arrays(rows):
    top, second, remaining, size = (np.array(c) for c in zip(*rows, strict=True))
    settled = rules.vote_decided(top, second, remaining)
    assert settled.tolist() == [rules.vote_decided(*r[:3]) for r in rows]
    assert rules.keep_sampling(remaining, settled).tolist() == [
        rules.keep_sampling(r[2], rules.vote_decided(*r[:3])) for r in rows
    ]
    assert rules.round_n(remaining, size).tolist() == [rules.round_n(r[2], r[3]) for r in rows]


def test_the_rule_order():
    # confident first: a tier whose escalation condition does not hold stops, whatever else holds
    assert rules.after_tier(False, False, True, True, True, True, True) is AfterTier.CONFIDENT
    # exploration before retry, only when escalation is due
    assert rules.after_tier(False, True, True, True, True, True, True) is AfterTier.SKIP_TO_TOP
    assert rules.after_tier(False, True, True, False, True, True, True) is AfterTier.EXPLORE
    # an exploration that does not fit the budget leaves the retry its turn
    assert rules.after_tier(False, True, True, False, False, True, True) is AfterTier.RETRY
    assert rules.after_tier(False, True, True, False, False, True, False) is AfterTier.ESCALATE
    # a final tier never explores; its retry.when alone decides
    assert rules.after_tier(True, False, True, True, True, False, True) is AfterTier.LAST_TIER
    assert rules.after_tier(True, False, False, False, True, True, True) is AfterTier.RETRY
    assert rules.STOP_REASONS == {
        AfterTier.CONFIDENT: StopReason.CONFIDENT,
        AfterTier.LAST_TIER: StopReason.LAST_TIER,
    }
    assert rules.is_final(2, 3, True) and rules.is_final(0, 3, False) and not rules.is_final(0, 3, True)
