"""What a tier does next: one pure function of the plan, the tier's state and the budget spent.

``decide`` is called each time a tier's asked samples are in. It reads the tier (its plan:
k, escalation condition, retry and exploration rules), the strategy (early stopping,
budget), what the tier has drawn so far (samples, retries, whether it explored), its vote
and signals, and what the whole problem has spent; it returns a typed :class:`Next`. No
I/O, no clock, no randomness: live runs (``runtime/jobs.py`` drives it), replay and the server
call it; the rules themselves (their order, the budget check, the exact early-stop rule) are
:mod:`cascadec.runtime.rules`, which the bank simulator's array evaluators call too
(:mod:`cascadec.sim.machine`, :mod:`cascadec.sim.sweep`), so they cannot disagree.

The order of the rules (:func:`cascadec.runtime.rules.after_tier`):

1. fewer samples than planned: keep sampling in rounds unless the early-stop rule says the
   vote is settled (then the tier ends on what it drew) — a round that would break the budget
   ends the problem (``budget``);
2. a tier with an ``escalate_if`` that does not hold → **stop** (``confident``);
3. exploration, at most once a tier, when escalation is due and ``explore.when`` holds:
   ``skip_to_top`` jumps to the last tier; ``raise_temperature`` asks ``extra_k`` hotter;
4. retry, at most ``retry.max`` times, when ``retry.when`` holds (within budget): ``extra_k``
   more samples on the same tier, then decide again over all of them. On a tier that would
   escalate this is retry-before-escalate; on a tier with nothing above it (the last tier, a
   majority vote) ``retry.when`` alone decides;
5. otherwise **escalate** (entering the next tier must fit the budget) or stop on the last tier.

Budgets are checked before every ask after the first: a problem never draws more than
``max_samples_per_problem`` samples, and asks nothing more once its cost reached
``max_cost_per_problem``.

Extending: an early-stopping rule is one entry of :data:`EARLY_STOP_RULES` (a function of the
tier state and the samples still planned), chosen by :func:`early_stop_rule`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from cascadec.core.policies import ExploreAction
from cascadec.plan import Budget, EarlyStop, PlanStrategy, PlanTier
from cascadec.runtime import rules
from cascadec.runtime.outcomes import Decision, Phase, StopReason
from cascadec.runtime.signals import holds
from cascadec.runtime.stopping import should_stop
from cascadec.runtime.vote_policy import PolicyVote, majority_vote
from cascadec.runtime.voting import Vote
from cascadec.spec.vote import StopRule


class Action(StrEnum):
    """What happens next: more samples on this tier, another tier, or the end of the problem."""

    SAMPLE = "sample"  # the next round of the tier's planned samples
    RETRY = "retry"  # extra samples on the same tier (retry rule)
    EXPLORE = "explore"  # extra samples on the same tier, hotter (raise_temperature)
    ESCALATE = "escalate"  # the next tier's first round
    SKIP_TO_TOP = "skip_to_top"  # the last tier's first round (exploration)
    STOP = "stop"  # the problem is done; ``Next.stop_reason`` says why


PHASES: dict[Action, Phase] = {
    Action.SAMPLE: Phase.SAMPLE,
    Action.RETRY: Phase.RETRY,
    Action.EXPLORE: Phase.EXPLORE,
    Action.ESCALATE: Phase.SAMPLE,
    Action.SKIP_TO_TOP: Phase.SAMPLE,
}


@dataclass(frozen=True)
class TierState:
    """A tier as far as it got: what it drew, how it voted, what it measured."""

    pos: int  # position in the problem's tiers (after cost-aware skipping)
    drawn: int  # samples drawn on this tier so far
    target: int  # samples planned on it so far: k, plus retries and explorations asked
    vote: Vote  # the vote over its samples
    signals: Mapping[str, float]
    retries: int = 0
    explored: bool = False
    weighted: PolicyVote | None = None  # the vote under the strategy's policy (None: majority)


@dataclass(frozen=True)
class Spent:
    """What the whole problem has used so far, every tier together (for budgets)."""

    samples: int
    cost: float


@dataclass(frozen=True)
class Next:
    """The decision: an ask (``n`` samples at ``temperature`` on tier ``pos``) or a stop.

    ``decision`` is set when the current tier ended (what to record for it); ``early_stopped``
    when it ended before its planned samples (its target becomes what it drew).
    """

    action: Action
    pos: int | None = None
    n: int = 0
    temperature: float | None = None
    decision: Decision | None = None
    stop_reason: StopReason | None = None
    early_stopped: bool = False

    @property
    def phase(self) -> Phase | None:
        return PHASES.get(self.action)

    @property
    def done(self) -> bool:
        return self.action is Action.STOP


# --- early stopping: one rule a name ------------------------------------------------------------
EarlyStopRule = Callable[[EarlyStop, TierState, int], bool]


def vote_decided(rule: EarlyStop, state: TierState, remaining: int) -> bool:
    """Exact: the ``remaining`` planned samples could not change the winner."""
    return rules.vote_decided(state.vote.top, state.vote.second, remaining)


def _policy_vote(state: TierState) -> PolicyVote:
    return state.weighted if state.weighted is not None else majority_vote(state.vote)


def _probabilistic(rule: EarlyStop, state: TierState, remaining: int) -> bool:
    """adaptive / esc / weighted (:mod:`cascadec.runtime.stopping`): the vote is settled enough."""
    return should_stop(rule, state.vote, _policy_vote(state), remaining)


EARLY_STOP_RULES: dict[StopRule, EarlyStopRule] = {
    StopRule.DECIDED: vote_decided,
    StopRule.ADAPTIVE: _probabilistic,
    StopRule.ESC: _probabilistic,
    StopRule.WEIGHTED: _probabilistic,
}


def early_stop_rule(rule: EarlyStop) -> EarlyStopRule:
    """The function of the strategy's early-stop rule."""
    return EARLY_STOP_RULES[StopRule(rule.rule)]


# --- the pieces --------------------------------------------------------------------------------
def round_size(strategy: PlanStrategy, remaining: int, drawn: int = 0) -> int:
    """How many of the ``remaining`` planned samples the next ask draws (all without early stop).

    Online termination draws a tier's warm-up traces first, on their own: the stop threshold
    is known before any later trace starts, whatever the schedule (:mod:`cascadec.runtime.online`).
    """
    on = strategy.online
    if on is not None and drawn < on.warmup:
        return min(on.warmup - drawn, remaining)
    es = strategy.early_stop
    return rules.round_n(remaining, es.round_size if es else 0)


def limits(budget: Budget | None) -> tuple[float, float]:
    """A budget as the rules read it: (max samples, max cost), :data:`rules.NO_LIMIT` where unset."""
    if budget is None:
        return rules.NO_LIMIT, rules.NO_LIMIT
    samples, cost = budget.max_samples_per_problem, budget.max_cost_per_problem
    return (rules.NO_LIMIT if samples is None else samples), (rules.NO_LIMIT if cost is None else cost)


def over_budget(budget: Budget | None, spent: Spent, n: int) -> bool:
    """Whether drawing ``n`` more samples would break the problem's budget."""
    return rules.over_budget(spent.samples, spent.cost, n, *limits(budget))


def first_ask(strategy: PlanStrategy, tiers: tuple[PlanTier, ...], pos: int = 0) -> Next:
    """The first round of tier ``pos`` (a problem's start: no budget is spent yet)."""
    tier = tiers[pos]
    return Next(Action.SAMPLE, pos=pos, n=round_size(strategy, tier.k), temperature=tier.temperature)


def _enter(strategy: PlanStrategy, tiers: tuple[PlanTier, ...], pos: int, spent: Spent, why: Action) -> Next:
    """Move to tier ``pos`` (escalation or skip), if its k fits the budget."""
    decision = Decision.SKIP_TO_TOP if why is Action.SKIP_TO_TOP else Decision.ESCALATE
    if over_budget(strategy.budget, spent, tiers[pos].k):
        return Next(Action.STOP, decision=decision, stop_reason=StopReason.BUDGET)
    ask = first_ask(strategy, tiers, pos)
    return Next(why, pos=pos, n=ask.n, temperature=ask.temperature, decision=decision)


# --- the decision --------------------------------------------------------------------------------
def decide(strategy: PlanStrategy, tiers: tuple[PlanTier, ...], state: TierState, spent: Spent) -> Next:
    """What tier ``state.pos`` of a problem under ``strategy`` does next (see the module docstring)."""
    tier = tiers[state.pos]
    remaining = state.target - state.drawn
    es = strategy.early_stop
    settled = remaining > 0 and es is not None and early_stop_rule(es)(es, state, remaining)
    if rules.keep_sampling(remaining, settled):
        n = round_size(strategy, remaining, state.drawn)
        if over_budget(strategy.budget, spent, n):
            return Next(Action.STOP, stop_reason=StopReason.BUDGET)
        return Next(Action.SAMPLE, pos=state.pos, n=n, temperature=tier.temperature)
    nxt = _after_tier(strategy, tiers, state, spent)
    return replace(nxt, early_stopped=True) if settled else nxt


def _after_tier(strategy: PlanStrategy, tiers: tuple[PlanTier, ...], state: TierState, spent: Spent) -> Next:
    """The tier drew what it planned: stop, explore, retry or escalate (:func:`rules.after_tier`)."""
    tier, sig = tiers[state.pos], state.signals
    final = rules.is_final(state.pos, len(tiers), tier.escalate_if is not None)
    escalate = not final and holds(tier.escalate_if, sig)
    ex, rr = tier.explore, tier.retry
    explore = escalate and ex is not None and not state.explored and holds(ex.when, sig)
    extra = (ex.extra_k or tier.k) if ex is not None else 0
    retry = rr is not None and state.retries < rr.max and holds(rr.when, sig)
    step = rules.after_tier(
        final,
        escalate,
        explore=explore,
        skip=explore and ex.action == ExploreAction.SKIP_TO_TOP,
        explore_fits=explore and not over_budget(strategy.budget, spent, extra),
        retry=retry,
        retry_fits=retry and not over_budget(strategy.budget, spent, rr.extra_k),
    )
    if step in rules.STOP_REASONS:
        return Next(Action.STOP, decision=Decision.STOP, stop_reason=rules.STOP_REASONS[step])
    if step is rules.AfterTier.SKIP_TO_TOP:
        return _enter(strategy, tiers, len(tiers) - 1, spent, Action.SKIP_TO_TOP)
    if step is rules.AfterTier.EXPLORE:
        temp = ex.temperature if ex.temperature is not None else tier.temperature
        return Next(Action.EXPLORE, pos=state.pos, n=extra, temperature=temp)
    if step is rules.AfterTier.RETRY:
        temp = rr.temperature if rr.temperature is not None else tier.temperature
        return Next(Action.RETRY, pos=state.pos, n=rr.extra_k, temperature=temp)
    return _enter(strategy, tiers, state.pos + 1, spent, Action.ESCALATE)
