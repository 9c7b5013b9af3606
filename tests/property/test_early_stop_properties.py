"""The exact ``decided`` rule never changes an answer: same final answers as fixed k."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cascadec.plan import EarlyStop, PlanVote
from cascadec.runtime.data import Problem
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.jobs import Job
from cascadec.runtime.records import SampleRecord
from cascadec.runtime.testing import strategy, tier

EQ = Equivalence("exact")
answer = st.one_of(st.none(), st.sampled_from(["1", "2", "3"]))
logprob = st.one_of(st.none(), st.sampled_from([-0.1, -0.5, -2.0]))


def drive(job: Job, samples: list[tuple[str | None, float | None, float]]) -> Job:
    while not job.done:
        ask = job.pending
        recs = []
        for i in range(ask.first, ask.first + ask.n):
            ans, lp, conf = samples[i]
            recs.append(
                SampleRecord(
                    id="p", strategy="s", tier=ask.tier, model=ask.model, round=ask.round,
                    phase=ask.phase, sample_index=i, text="", answer=ans, num_tokens=3,
                    finish_reason="stop", mean_logprob=lp, mean_entropy=None,
                    token_confidence=[conf] * 3,
                )
            )  # fmt: skip
        job.receive(recs)
    return job


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(st.tuples(answer, logprob, st.floats(0.1, 5)), min_size=k, max_size=k),
            st.integers(1, 4),
        )
    )
)
def test_decided_rule_gives_the_answers_of_fixed_k(case):
    k, samples, round_size = case
    tiers = [tier("M", k)]
    fixed = drive(Job(Problem("p", "?"), strategy("s", tiers), tuple(tiers), EQ), samples)
    early_s = strategy("s", tiers, early_stop=EarlyStop(round_size=round_size))
    early = drive(Job(Problem("p", "?"), early_s, tuple(tiers), EQ), samples)
    assert early.final_answer == fixed.final_answer
    assert len(early.samples) <= len(fixed.samples) == k


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(answer, logprob, st.floats(0.1, 5)), min_size=8, max_size=8))
def test_probabilistic_rules_never_draw_more_than_k(samples):
    tiers = [tier("M", 8)]
    for rule in ("adaptive", "esc", "weighted"):
        s = strategy("s", tiers, early_stop=EarlyStop(rule=rule), vote=PlanVote(policy="weighted"))
        job = drive(Job(Problem("p", "?"), s, tuple(tiers), EQ), samples)
        assert 1 <= len(job.samples) <= 8 and job.done


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(answer, logprob, st.floats(0.1, 5)), min_size=8, max_size=8),
    st.sampled_from(["adaptive", "weighted"]),
    st.sampled_from([(0.8, 0.9), (0.9, 0.95), (0.85, 0.99)]),
    st.sampled_from([None, PlanVote(policy="weighted"), PlanVote(policy="weighted", metric="lowest_group")]),
)
def test_a_lower_confidence_never_draws_more(samples, rule, levels, vote):
    """The posterior rules stop at the first sample whose posterior reaches the level: lowering
    the level (the bench's 0.9 against the literature's 0.95) can only stop sooner."""
    tiers = [tier("M", 8)]
    drawn = []
    for level in levels:
        s = strategy("s", tiers, early_stop=EarlyStop(rule=rule, confidence=level, round_size=1), vote=vote)
        drawn.append(len(drive(Job(Problem("p", "?"), s, tuple(tiers), EQ), samples).samples))
    assert drawn[0] <= drawn[1]
