"""One problem under one strategy: the state machine that walks it through the tiers.

A job always holds at most one pending ask (n samples from one model). When a tier's planned
samples are in, it votes and decides, in this order:

1. a tier with an ``escalate_if`` that does not hold → **stop** (the vote is good enough);
2. exploration (entropy cascades), at most once per tier, when escalation is due and
   ``explore.when`` holds: ``skip_to_top`` jumps to the last tier (the middle ones are
   hopeless), ``raise_temperature`` asks ``extra_k`` (default k) more samples, hotter, and
   re-decides over all of them;
3. retry, at most ``retry.max`` times, when ``retry.when`` holds: ``extra_k`` more samples on
   the same tier (at ``retry.temperature`` if given), then re-decide over all of them. On a
   tier that would escalate this is retry-before-escalate; on a tier with nothing above it
   (the last tier, a majority vote) ``retry.when`` alone decides;
4. otherwise **escalate** to the next tier, or stop on the last one.

With ``early_stop`` a tier's k samples come in rounds of ``round_size`` and the tier ends as
soon as the remaining samples could not change the winner; its signals are then measured on
the samples drawn. Budgets are checked before every ask after the first: a problem never
draws more than ``max_samples_per_problem`` samples, and asks nothing more once its cost
reached ``max_cost_per_problem``.

Final answer policies: ``last_tier`` — the winner of the last tier that ran;
``most_confident`` — the winner of the tier with the highest agreement (ties: the later,
stronger tier); ``pooled`` — one vote over every voting sample of every tier that ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cascadec.core.seeds import base_seed
from cascadec.plan import PlanStrategy, PlanTier
from cascadec.runtime.data import Problem
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.signals import compute_signals, holds, json_safe
from cascadec.runtime.voting import Ballot, Vote, tally


@dataclass(frozen=True)
class SampleRecord:
    """One generated sample as the runtime keeps and journals it."""

    tier: int  # index into the strategy's tiers (as compiled)
    model: str
    round: int  # 0, 1, ... asks on this tier (rounds, retries, explorations)
    phase: str  # "sample" | "retry" | "explore"
    sample_index: int  # 0, 1, ... per (problem, strategy, tier): the bank index in replay
    text: str
    answer: str | None  # None: no answer, or truncated (it does not vote)
    num_tokens: int
    finish_reason: str
    mean_logprob: float | None
    mean_entropy: float | None
    seconds: float = 0.0
    temperature: float | None = None  # what it was sampled at (retries/explorations may differ)

    @property
    def votes(self) -> bool:
        return self.answer is not None


@dataclass(frozen=True)
class Ask:
    """The samples a job waits for."""

    tier: int  # original tier index
    model: str
    round: int
    phase: str
    first: int
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int  # base seed (sample 0's) of (spec seed, model, problem, temperature): core.seeds


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
    decision: str = ""
    vote: Vote | None = None
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
        self.runs: list[TierRun] = []
        self.pending: Ask | None = None
        self.done = False
        self.stop_reason = ""
        self.final_answer: str | None = None
        self.correct: bool | None = None
        self._enter(0)

    @property
    def key(self) -> tuple[str, str]:
        return (self.problem.id, self.strategy.key)

    @property
    def samples(self) -> list[SampleRecord]:
        return [s for r in self.runs for s in r.samples]

    @property
    def cost(self) -> float:
        return sum(len_tokens(r) * r.tier.cost_per_token for r in self.runs)

    # --- transitions ----------------------------------------------------------------------
    def _enter(self, pos: int) -> None:
        tier = self.tiers[pos]
        if self.runs and self._over_budget(tier.k):
            self._finish("budget")
            return
        run = TierRun(pos=pos, index=pos + self.offset, tier=tier, target=tier.k)
        self.runs.append(run)
        self._ask(run, self._round_n(run), "sample", tier.temperature)

    def _round_n(self, run: TierRun) -> int:
        remaining = run.target - len(run.samples)
        es = self.strategy.early_stop
        return min(es.round_size, remaining) if es else remaining

    def _over_budget(self, n: int) -> bool:
        b = self.strategy.budget
        if b is None:
            return False
        if b.max_samples_per_problem is not None and len(self.samples) + n > b.max_samples_per_problem:
            return True
        return b.max_cost_per_problem is not None and self.cost >= b.max_cost_per_problem

    def _ask(self, run: TierRun, n: int, phase: str, temperature: float) -> None:
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
        """Take the pending ask's samples, vote, and decide what comes next."""
        assert self.pending is not None and len(records) == self.pending.n
        run = self.runs[-1]
        run.samples.extend(records)
        run.rounds += 1
        self.pending = None
        run.vote = tally(ballots(run.samples), self.eq)
        run.signals = compute_signals(run.vote, run.samples)
        remaining = run.target - len(run.samples)
        if remaining > 0:
            if not run.vote.decided(remaining):
                if self._over_budget(min(remaining, self._round_n(run))):
                    self._finish("budget")
                    return
                self._ask(run, self._round_n(run), "sample", run.tier.temperature)
                return
            run.early_stopped = True
            run.target = len(run.samples)
        self._decide(run)

    def _decide(self, run: TierRun) -> None:
        tier, sig = run.tier, run.signals
        final = run.pos == len(self.tiers) - 1 or tier.escalate_if is None
        if not final and not holds(tier.escalate_if, sig):
            run.decision = "stop"
            self._finish("confident")
            return
        ex = tier.explore
        if not final and ex is not None and not run.explored and holds(ex.when, sig):
            run.explored = True
            if ex.action == "skip_to_top":
                run.decision = "skip_to_top"
                self._enter(len(self.tiers) - 1)
                return
            extra = ex.extra_k or tier.k
            if not self._over_budget(extra):
                run.target += extra
                temp = ex.temperature if ex.temperature is not None else tier.temperature
                self._ask(run, extra, "explore", temp)
                return
        rr = tier.retry
        if (
            rr is not None
            and run.retries < rr.max
            and holds(rr.when, sig)
            and not self._over_budget(rr.extra_k)
        ):
            run.retries += 1
            run.target += rr.extra_k
            temp = rr.temperature if rr.temperature is not None else tier.temperature
            self._ask(run, rr.extra_k, "retry", temp)
            return
        if final:
            run.decision = "stop"
            self._finish("last_tier")
            return
        run.decision = "escalate"
        self._enter(run.pos + 1)

    def _finish(self, reason: str) -> None:
        self.done = True
        self.pending = None
        self.stop_reason = reason
        self.final_answer = self._final()

    def grade(self) -> None:
        """Compare the final answer with the gold one (None when there is no gold)."""
        gold = self.problem.gold
        if gold is not None:
            self.correct = self.final_answer is not None and self.eq.same(self.final_answer, gold)

    def _final(self) -> str | None:
        voted = [r for r in self.runs if r.vote is not None]
        if not voted:
            return None
        policy = self.strategy.final_answer
        if policy == "pooled":
            return tally(ballots([s for r in voted for s in r.samples]), self.eq).winner
        if policy == "most_confident":
            best = max(reversed(voted), key=lambda r: (r.vote.winner is not None, r.signals["agreement"]))
            return best.vote.winner  # ties: max() keeps the first, i.e. the later tier (reversed)
        return voted[-1].vote.winner

    # --- results -----------------------------------------------------------------------------
    def row(self) -> dict:
        """The per-problem result row (JSON-able; nested things as JSON text)."""
        samples = self.samples
        return {
            "id": self.problem.id,
            "strategy": self.strategy.key,
            "final_answer": self.final_answer,
            "gold": self.problem.gold,
            "correct": self.correct,
            "tiers_used": len(self.runs),
            "path": " > ".join(f"{r.index}:{r.decision}" for r in self.runs),
            "models": json.dumps([r.tier.model for r in self.runs]),
            "stop_reason": self.stop_reason,
            "decisions": json.dumps(
                [
                    {
                        "tier": r.index,
                        "model": r.tier.model,
                        "k": len(r.samples),
                        "rounds": r.rounds,
                        "retries": r.retries,
                        "explored": r.explored,
                        "early_stopped": r.early_stopped,
                        "decision": r.decision,
                    }
                    for r in self.runs
                ]
            ),
            "votes": json.dumps([r.vote.counts() if r.vote else {} for r in self.runs], ensure_ascii=False),
            "signals": json.dumps([json_safe(r.signals) for r in self.runs]),
            "samples": len(samples),
            "tokens": sum(s.num_tokens for s in samples),
            "cost": round(self.cost, 6),
            "seconds": round(sum(s.seconds for s in samples), 6),
        }


def len_tokens(run: TierRun) -> int:
    return sum(s.num_tokens for s in run.samples)
