"""One problem under one strategy: a thin driver of the pure decision function.

A job always holds at most one pending ask (n samples from one model). When the ask's
samples are in it votes, measures the tier's signals and asks
:func:`cascadec.runtime.decide.decide` what comes next (keep sampling in rounds, stop,
explore, retry, escalate, skip to the top, out of budget — the rules and their order are
documented there); it only keeps the state: the tiers that ran, their samples, votes and
signals, and what they decided.

Every vote is taken under the strategy's ``vote`` policy (:mod:`cascadec.runtime.vote_policy`;
default majority): the tier's winner and the final answer are that policy's winner, and the
early-stop rules (:mod:`cascadec.runtime.stopping`) see both votes.

Final answer policies: ``last_tier`` — the winner of the last tier that ran;
``most_confident`` — the winner of the tier with the highest agreement (weighted_agreement
under a weighted or filtered vote; ties: the later,
stronger tier); ``pooled`` — one vote over every voting sample of every tier that ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cascadec.core.policies import FinalAnswer
from cascadec.core.seeds import base_seed
from cascadec.plan import PlanStrategy, PlanTier, PlanVote, tier_probabilities
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.confidence import TraceConfidence, trace_confidence
from cascadec.runtime.data import Problem
from cascadec.runtime.decide import Action, Next, Spent, TierState, decide, first_ask
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.outcomes import Decision, Phase, StopReason
from cascadec.runtime.records import (
    PathStep,
    ProblemRecord,
    SampleRecord,
    Signals,
    TierRecord,
    VoteCount,
    VoteWeight,
)
from cascadec.runtime.signals import agreement_with_previous, compute_signals, json_safe
from cascadec.runtime.vote_policy import PolicyVote, apply_policy
from cascadec.runtime.voting import Ballot, Vote, tally
from cascadec.spec.vote import VotePolicy


@dataclass(frozen=True)
class Ask:
    """The samples a job waits for."""

    tier: int  # original tier index
    model: str
    round: int
    phase: Phase
    first: int
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int  # base seed (sample 0's) of (spec seed, model, problem, temperature): core.seeds

    def request(self, request_id: str, problem_id: str, prompt: str) -> GenerationRequest:
        """What a backend is asked for these samples (the executor and the server ask alike)."""
        return GenerationRequest(
            request_id=request_id,
            problem_id=problem_id,
            prompt=prompt,
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            first_sample=self.first,
        )


@dataclass
class TierRun:
    pos: int  # position in the job's (resolved) tiers
    index: int  # original tier index
    tier: PlanTier
    target: int  # samples planned so far (k, plus retries/explorations)
    samples: list[SampleRecord] = field(default_factory=list)
    rounds: int = 0
    retries: int = 0
    explored: bool = False
    early_stopped: bool = False
    decision: Decision = Decision.BUDGET  # until the tier decides (a budget may end it first)
    vote: Vote | None = None
    weighted: PolicyVote | None = None  # the vote under the strategy's policy: its winner counts
    confidences: list[TraceConfidence | None] = field(default_factory=list)  # per sample
    signals: dict[str, float] = field(default_factory=dict)


def ballots(samples: list[SampleRecord]) -> list[Ballot]:
    return [Ballot(s.answer, s.mean_logprob) for s in samples]


class Job:
    def __init__(
        self, problem: Problem, strategy: PlanStrategy, tiers: tuple[PlanTier, ...], equivalence: Equivalence
    ):
        self.problem = problem
        self.strategy = strategy
        self.tiers = tiers
        self.offset = len(strategy.tiers) - len(tiers)  # cost-aware skipping drops leading tiers
        self.eq = equivalence
        self.voting = strategy.vote or PlanVote()
        self.runs: list[TierRun] = []
        self.pending: Ask | None = None
        self.done = False
        self.stop_reason: StopReason | None = None
        self.final_answer: str | None = None
        self.correct: bool | None = None
        # learned routing: the router's P(right) per tier, predicted before any sample (router_p)
        self.router_p = tier_probabilities(strategy, problem.features)
        self._apply(first_ask(strategy, tiers))

    @property
    def key(self) -> tuple[str, str]:
        return (self.problem.id, self.strategy.key)

    @property
    def samples(self) -> list[SampleRecord]:
        return [s for r in self.runs for s in r.samples]

    @property
    def cost(self) -> float:
        return sum(run_cost(r) for r in self.runs)

    # --- transitions: runtime.decide says what, the job only keeps the state -------------------
    def _spent(self) -> Spent:
        return Spent(samples=len(self.samples), cost=self.cost)

    def _apply(self, nxt: Next) -> None:
        """Carry out a decision of :func:`cascadec.runtime.decide.decide`."""
        run = self.runs[-1] if self.runs else None
        if run is not None and nxt.decision is not None:
            run.decision = nxt.decision
        if nxt.action is Action.STOP:
            assert nxt.stop_reason is not None
            self._finish(nxt.stop_reason)
            return
        assert nxt.pos is not None and nxt.temperature is not None and nxt.phase is not None
        if nxt.action in (Action.ESCALATE, Action.SKIP_TO_TOP) or run is None:
            if run is not None and nxt.action is Action.SKIP_TO_TOP:
                run.explored = True
            tier = self.tiers[nxt.pos]
            run = TierRun(pos=nxt.pos, index=nxt.pos + self.offset, tier=tier, target=tier.k)
            self.runs.append(run)
        elif nxt.action is Action.RETRY:
            run.retries += 1
            run.target += nxt.n
        elif nxt.action is Action.EXPLORE:
            run.explored = True
            run.target += nxt.n
        self._ask(run, nxt.n, nxt.phase, nxt.temperature)

    def _ask(self, run: TierRun, n: int, phase: Phase, temperature: float) -> None:
        tier = run.tier
        first = len(run.samples)
        self.pending = Ask(
            run.index,
            tier.model,
            run.rounds,
            phase,
            first,
            n,
            temperature,
            tier.top_p,
            tier.max_tokens,
            base_seed(tier.seed, tier.model, self.problem.id, temperature),
        )

    def receive(self, records: list[SampleRecord]) -> None:
        """Take the pending ask's samples, vote, and let the decision function say what comes next."""
        assert self.pending is not None and len(records) == self.pending.n
        run = self.runs[-1]
        run.samples.extend(records)
        run.confidences.extend(self._trace(r) for r in records)
        run.rounds += 1
        self.pending = None
        run.vote, run.weighted = self._vote(run.samples, run.confidences)
        run.signals = compute_signals(
            run.vote, run.samples, run.weighted, run.confidences, self.voting.signal_metric()
        )
        previous = self.runs[-2].weighted if len(self.runs) > 1 else None
        run.signals["agrees_prev"] = agreement_with_previous(
            previous.winner if previous is not None else None,
            run.weighted.winner,
            self.eq.same,
            len(self.runs) > 1,
        )
        run.signals["router_p"] = self.router_p[run.index] if self.router_p is not None else math.nan
        state = TierState(
            pos=run.pos,
            drawn=len(run.samples),
            target=run.target,
            vote=run.vote,
            signals=run.signals,
            retries=run.retries,
            explored=run.explored,
            weighted=run.weighted,
        )
        nxt = decide(self.strategy, self.tiers, state, self._spent())
        if nxt.early_stopped:
            run.early_stopped = True
            run.target = len(run.samples)
        self._apply(nxt)

    def _trace(self, record: SampleRecord) -> TraceConfidence | None:
        return trace_confidence(record.token_confidence, self.voting.window, self.voting.tail)

    def _vote(
        self, samples: list[SampleRecord], confidences: list[TraceConfidence | None]
    ) -> tuple[Vote, PolicyVote]:
        vote = tally(ballots(samples), self.eq)
        logprobs = [s.mean_logprob for s in samples]
        scores = [s.score for s in samples]
        return vote, apply_policy(vote, confidences, self.voting, logprobs, scores)

    def _finish(self, reason: StopReason) -> None:
        self.done = True
        self.pending = None
        self.stop_reason = reason
        self.final_answer = self._final()

    def grade(self) -> None:
        """Compare the final answer with the gold one (None when there is no gold)."""
        gold = self.problem.gold
        if gold is not None:
            # asymmetric, as math-verify: the gold decides; an ungraded pair counts as not correct
            # here and in ``Equivalence.ungraded``
            self.correct = self.eq.grade(gold, self.final_answer) is True

    def _final(self) -> str | None:
        voted = [r for r in self.runs if r.weighted is not None]
        if not voted:
            return None
        policy = self.strategy.final_answer
        if policy == FinalAnswer.POOLED:
            confidences = [c for r in voted for c in r.confidences]
            return self._vote([s for r in voted for s in r.samples], confidences)[1].winner
        if policy == FinalAnswer.MOST_CONFIDENT:
            key = "agreement" if self.voting.policy == VotePolicy.MAJORITY else "weighted_agreement"
            best = max(reversed(voted), key=lambda r: (r.weighted.winner is not None, r.signals[key]))
            return best.weighted.winner  # ties: max() keeps the first, i.e. the later tier (reversed)
        return voted[-1].weighted.winner

    # --- results -----------------------------------------------------------------------------
    def record(self) -> ProblemRecord:
        """The finished problem's result record (one row of ``problems.parquet``)."""
        assert self.stop_reason is not None, "record() before the job finished"
        samples = self.samples
        return ProblemRecord(
            id=self.problem.id,
            strategy=self.strategy.key,
            final_answer=self.final_answer,
            gold=self.problem.gold,
            correct=self.correct,
            tiers_used=len(self.runs),
            path=[PathStep(tier=r.index, decision=r.decision) for r in self.runs],
            models=[r.tier.model for r in self.runs],
            stop_reason=self.stop_reason,
            tiers=[
                TierRecord(
                    tier=r.index,
                    model=r.tier.model,
                    k=len(r.samples),
                    rounds=r.rounds,
                    retries=r.retries,
                    explored=r.explored,
                    early_stopped=r.early_stopped,
                    decision=r.decision,
                    votes=[
                        VoteCount(answer=a, count=c) for a, c in (r.vote.counts() if r.vote else {}).items()
                    ],
                    signals=Signals(**json_safe(r.signals)),
                    vote=r.weighted.applied if r.weighted else None,
                    weights=_weights(r.weighted),
                )
                for r in self.runs
            ],
            samples=len(samples),
            tokens=sum(s.num_tokens for s in samples),
            cost=round(self.cost, 6),
            seconds=round(sum(s.seconds for s in samples), 6),
            ungraded=self._ungraded(),
            grading_over_budget=self.eq.is_over_budget(self.key),
        )

    def _ungraded(self) -> bool:
        """Did the grader give up on a pair of this problem's answers (its votes or its grading)?"""
        answers = sorted({s.answer for s in self.samples if s.answer is not None})
        if self.problem.gold is not None:
            answers.append(self.problem.gold)
        return any(self.eq.was_ungraded(a, b) for i, a in enumerate(answers) for b in answers[i + 1 :])


def run_cost(run: TierRun) -> float:
    """A tier's cost: its samples' tokens x the model's cost per token, except samples that carry
    a recorded cost (an API's price, from an imported bank), which count that instead. Summed in
    this order (tokens first, recorded costs in sample order) here and in the simulator."""
    tokens = sum(s.num_tokens for s in run.samples if s.cost is None)
    recorded = 0.0
    for s in run.samples:
        if s.cost is not None:
            recorded += s.cost
    return tokens * run.tier.cost_per_token + recorded


def _weights(weighted: PolicyVote | None) -> list[VoteWeight] | None:
    """A weighted or filtered vote's clusters and weights (None under majority: votes say it all)."""
    if weighted is None or weighted.applied is VotePolicy.MAJORITY:
        return None
    return [VoteWeight(answer=a, weight=w) for a, w in weighted.weights().items()]
