"""Laws of the pure decision function (cascadec.runtime.decide), on generated plans and states.

- total: every (strategy, tier state, spend) gets a well-formed ``Next``, never an exception;
- deterministic: the same inputs give the same decision;
- a problem driven by it alone (a bank simulation: answers drawn from a list, no I/O) ends,
  never asks past its budget, and never asks a tier more than its k, retries and exploration.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadec.plan import Budget, EarlyStop, Exploration, RetryRule
from cascadec.runtime.decide import Action, Next, Spent, TierState, decide, first_ask
from cascadec.runtime.outcomes import StopReason
from cascadec.runtime.signals import compute_signals
from cascadec.runtime.testing import strategy, tier
from cascadec.runtime.voting import Cluster, Vote

SETTINGS = settings(
    max_examples=int(os.environ.get("CASCADEC_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CONDITIONS = [
    "agreement < 0.75",
    "agreement < 1",
    "entropy > 0.5 or no_answer > 0.25",
    "margin <= 0.25 and k >= 2",
    "true",
    "false",
]
ANSWERS = st.sampled_from(["1", "2", "3", None])


@st.composite
def plans(draw):
    n_tiers = draw(st.integers(1, 3))
    tiers = []
    for i in range(n_tiers):
        last = i == n_tiers - 1
        k = draw(st.integers(1, 6))
        retry = draw(
            st.none()
            | st.builds(
                RetryRule,
                max=st.integers(1, 2),
                when=st.sampled_from(CONDITIONS),
                extra_k=st.integers(1, 3),
                temperature=st.none() | st.just(1.0),
            )
        )
        explore = draw(
            st.none()
            | st.builds(
                Exploration,
                when=st.sampled_from(CONDITIONS),
                action=st.sampled_from(["skip_to_top", "raise_temperature"]),
                extra_k=st.integers(0, 3),
            )
        )
        escalate_if = None if last else draw(st.sampled_from(CONDITIONS))
        tiers.append(
            tier(f"m{i}", k, 0.7, escalate_if=escalate_if, retry=retry, explore=explore, cost=float(i + 1))
        )
    early_stop = draw(st.none() | st.builds(EarlyStop, round_size=st.integers(1, 3)))
    budget = draw(
        st.none()
        | st.builds(
            Budget,
            max_samples_per_problem=st.none() | st.integers(1, 20),
            max_cost_per_problem=st.none() | st.floats(1, 500),
        )
    )
    return strategy("s", tiers, early_stop=early_stop, budget=budget)


def vote_of(answers: list[str | None]) -> Vote:
    """The majority vote over exact answers (no equivalence engine needed)."""
    positions: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        if a is not None:
            positions.setdefault(a, []).append(i)
    clusters = sorted(
        (Cluster(a, tuple(m), None) for a, m in positions.items()), key=lambda c: (-c.count, c.members[0])
    )
    return Vote(tuple(clusters), len(answers))


class _Sample:
    def __init__(self, answer):
        self.answer, self.num_tokens, self.mean_logprob, self.mean_entropy = answer, 4, -0.1, 0.2


def state_of(pos: int, answers: list, target: int, retries: int = 0, explored: bool = False) -> TierState:
    vote = vote_of(answers)
    signals = compute_signals(vote, [_Sample(a) for a in answers])
    return TierState(pos, len(answers), target, vote, signals, retries, explored)


@SETTINGS
@given(plans(), st.data())
def test_total_and_deterministic(s, data):
    pos = data.draw(st.integers(0, len(s.tiers) - 1))
    answers = data.draw(st.lists(ANSWERS, min_size=1, max_size=10))
    target = data.draw(st.integers(len(answers), len(answers) + 4))
    state = state_of(pos, answers, target, data.draw(st.integers(0, 2)), data.draw(st.booleans()))
    spent = Spent(data.draw(st.integers(len(answers), 30)), data.draw(st.floats(0, 600)))
    nxt = decide(s, s.tiers, state, spent)
    assert nxt == decide(s, s.tiers, state, spent)
    assert isinstance(nxt, Next) and isinstance(nxt.action, Action)
    if nxt.done:
        assert isinstance(nxt.stop_reason, StopReason) and nxt.n == 0
        return
    assert nxt.n >= 1 and nxt.temperature is not None and nxt.phase is not None
    if nxt.action in (Action.SAMPLE, Action.RETRY, Action.EXPLORE):
        assert nxt.pos == pos
    elif nxt.action is Action.ESCALATE:
        assert nxt.pos == pos + 1
    else:
        assert nxt.pos == len(s.tiers) - 1
    if nxt.action is Action.SAMPLE:
        assert nxt.n <= target - len(answers) and not nxt.early_stopped


@SETTINGS
@given(plans(), st.lists(ANSWERS, min_size=40, max_size=40))
def test_a_simulated_problem_ends_within_its_budget(s, stream):
    """Drive one problem with decide alone, drawing answers from ``stream`` (like a bank)."""
    drawn = iter(stream)
    nxt = first_ask(s, s.tiers)
    per_tier: Counter[int] = Counter()
    samples, cost, state = 0, 0.0, None
    for _ in range(100):
        if nxt.done:
            break
        assert nxt.pos is not None
        if state is None or nxt.pos != state.pos:
            state = state_of(nxt.pos, [], s.tiers[nxt.pos].k)
            answers: list = []
        if nxt.action in (Action.RETRY, Action.EXPLORE):
            state = TierState(
                state.pos,
                state.drawn,
                state.target + nxt.n,
                state.vote,
                state.signals,
                state.retries + (nxt.action is Action.RETRY),
                state.explored or nxt.action is Action.EXPLORE,
            )
        answers += [next(drawn, "1") for _ in range(nxt.n)]
        samples += nxt.n
        per_tier[nxt.pos] += nxt.n
        cost += nxt.n * 4 * s.tiers[nxt.pos].cost_per_token
        b = s.budget
        if b is not None and b.max_samples_per_problem is not None and samples > nxt.n:
            assert samples <= b.max_samples_per_problem
        new = state_of(state.pos, answers, state.target, state.retries, state.explored)
        nxt = decide(s, s.tiers, new, Spent(samples, cost))
        state = TierState(
            new.pos,
            new.drawn,
            new.drawn if nxt.early_stopped else new.target,
            new.vote,
            new.signals,
            new.retries,
            new.explored or nxt.action is Action.SKIP_TO_TOP,
        )
    assert nxt.done, "every problem ends"
    for pos, n in per_tier.items():
        t = s.tiers[pos]
        extra = (t.retry.max * t.retry.extra_k if t.retry else 0) + (
            (t.explore.extra_k or t.k) if t.explore and t.explore.action == "raise_temperature" else 0
        )
        assert n <= t.k + extra
