"""The vectorised simulator's fast path: configurations whose tiers decide on their own samples.

In a plain threshold cascade (no retry, exploration, budget, adaptive k or pooled answer) what
a tier does to a problem depends only on (stream, k, early-stop round size): which samples it
draws, its vote and its signals. A sweep over thousands of thresholds shares a handful of such
tiers, so each is computed once per bank (:class:`TierStats`, through the same prefix sums,
vote and signal functions as :mod:`.machine`) and a configuration becomes a few comparisons
over arrays of problems. The property tests hold it to the general machine and to replay runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from cascadec.core.conditions import parse_condition
from cascadec.core.policies import FinalAnswer
from cascadec.core.signals import SIMULATED_SIGNALS, TIER_SIGNALS
from cascadec.plan import PlanStrategy
from cascadec.runtime import rules
from cascadec.sim.arrays import BIG, BankArrays, log_terms
from cascadec.sim.tables import POLICY_LAST_TIER, REASONS, OutcomeArrays, Tables, veval
from cascadec.sim.tally import at_winner, signals, vote

LOCAL_SIGNALS = TIER_SIGNALS & SIMULATED_SIGNALS  # what a tier's own samples say, on the arrays
GROUP_ELEMENTS = 500_000  # configurations × problems evaluated together: bounds memory


def sweepable(strategy: PlanStrategy) -> bool:
    """Whether every tier's decision depends only on that tier's own samples."""
    conditions = [t.escalate_if for t in strategy.tiers if t.escalate_if]
    return (
        all(parse_condition(c).signals() <= LOCAL_SIGNALS for c in conditions)
        and strategy.adaptive_k is None
        and strategy.route is None
        and strategy.budget is None
        and strategy.final_answer in (FinalAnswer.LAST_TIER, FinalAnswer.MOST_CONFIDENT)
        and all(t.retry is None and t.explore is None for t in strategy.tiers)
    )


@dataclass
class TierStats:
    """Per problem: what one tier (stream, k, round size) draws, votes and measures."""

    drawn: np.ndarray  # samples the tier takes (early stopping may take fewer than k)
    tokens: np.ndarray
    priced_tokens: np.ndarray  # tokens of samples without a recorded cost
    recorded_cost: np.ndarray  # sum of the samples' recorded costs
    win: np.ndarray  # winning class, -1: no vote
    has: np.ndarray  # 1 when the tier has a winner (most_confident's first key)
    agree: np.ndarray  # top / drawn (most_confident's second key)
    signals: dict[str, np.ndarray]
    short: np.ndarray  # the bank lacks a sample the tier asks for


@dataclass
class Chain:
    """One cascade's tiers (streams, k, round size, costs, policy) over every problem: [tier, P]
    arrays of what a problem records when it stops at that tier, and the tiers' own figures."""

    stats: list[TierStats]
    final: int  # the tier every path ends at, at the latest
    cost: np.ndarray
    tokens: np.ndarray
    samples: np.ndarray
    winner: np.ndarray
    correct: np.ndarray
    short: np.ndarray  # the bank lacks a sample some tier up to this one asks for


class Sweep:
    def __init__(self, arrays: BankArrays):
        self.bank, self.pre = arrays, arrays.prefix
        self.P = len(arrays.problems)
        self.log_terms = log_terms(int(arrays.n * 4 + 64))
        self.stats: dict[tuple[int, int, int], TierStats] = {}
        self.chains: dict[tuple, Chain] = {}

    def tier(self, stream: int, k: int, round_size: int) -> TierStats:
        key = (stream, k, round_size)
        if key not in self.stats:
            self.stats[key] = self._measure(*key)
        return self.stats[key]

    def _measure(self, s: int, k: int, round_size: int) -> TierStats:
        pre, P = self.pre, self.P
        p = np.arange(P)
        avail = self.bank.avail[s]
        last = pre.votes.shape[2] - 1

        def at(b):
            return np.minimum(b, last)  # a short problem's figures are never used (see ``short``)

        b = rules.round_n(np.full(P, k, dtype=np.int64), round_size)
        while round_size > 0:  # early stopping: another round while the vote is not decided
            _, top, second, _ = vote(
                pre.votes[s, p, at(b)],
                pre.class_logprob[s, p, at(b)],
                pre.first[s],
                pre.no_logprob[s, p, at(b)],
            )
            remaining = k - b
            go_on = rules.keep_sampling(remaining, rules.vote_decided(top, second, remaining))
            if not go_on.any():
                break
            b = np.where(go_on, b + rules.round_n(remaining, round_size), b)
        i = at(b)
        votes, fp = pre.votes[s, p, i], pre.first[s]
        first = np.where(fp < b[:, None], fp, BIG)
        win, top, second, voters = vote(votes, pre.class_logprob[s, p, i], first, pre.no_logprob[s, p, i])
        tokens = pre.tokens[s, p, i]
        sums = (
            pre.logprob_sum[s, p, i],
            pre.logprob_count[s, p, i],
            pre.entropy_sum[s, p, i],
            pre.entropy_count[s, p, i],
        )
        sc = pre.scores
        scores = None
        if sc is not None:
            scores = (
                sc.sum[s, p, i],
                sc.count[s, p, i],
                sc.max[s, p, i],
                at_winner(sc.class_sum[s, p, i], win),
                at_winner(sc.class_count[s, p, i], win),
            )
        return TierStats(
            drawn=b,
            tokens=tokens,
            priced_tokens=pre.priced_tokens[s, p, i],
            recorded_cost=pre.recorded_cost[s, p, i],
            win=win,
            has=(win >= 0).astype(np.int64),
            agree=top / np.maximum(b, 1),
            signals=signals(b, votes, top, second, voters, sums, tokens, self.log_terms, scores),
            short=b > avail,
        )

    def chain(self, tables: Tables, c: int) -> Chain:
        """Configuration ``c``'s tiers as a chain: per stop tier, what the problem records."""
        n = int(tables.ntiers[c])
        key = (
            int(tables.round_size[c]),
            int(tables.policy[c]),
            *tables.stream[c, :n],
            *tables.k[c, :n],
            *tables.cost_per_token[c, :n],
        )
        key += tuple(tables.escalate_if[c, :n] < 0)
        if key not in self.chains:
            self.chains[key] = self._link(tables, c)
        return self.chains[key]

    def _link(self, tables: Tables, c: int) -> Chain:
        n, round_size, policy, P = (
            int(tables.ntiers[c]),
            int(tables.round_size[c]),
            int(tables.policy[c]),
            self.P,
        )
        # the first tier that cannot escalate ends every path (the tiers after it never run)
        final = next(t for t in range(n) if t == n - 1 or tables.escalate_if[c, t] < 0)
        stats = [
            self.tier(int(tables.stream[c, t]), int(tables.k[c, t]), round_size) for t in range(final + 1)
        ]
        cost, tokens, samples, winner, short = [], [], [], [], []
        cost_t, tokens_t, samples_t, short_t = np.zeros(P), 0, 0, np.zeros(P, dtype=bool)
        best_has, best_agree, best_win = np.full(P, -1), np.full(P, -np.inf), np.full(P, -1)
        for t, st in enumerate(stats):
            cost_t = cost_t + (
                st.priced_tokens * tables.cost_per_token[c, t] + st.recorded_cost
            )  # the runtime's order
            tokens_t, samples_t, short_t = tokens_t + st.tokens, samples_t + st.drawn, short_t | st.short
            if policy == POLICY_LAST_TIER:
                win = st.win
            else:  # most_confident: (has a winner, agreement); a later tier wins ties
                better = rules.more_confident(st.has, st.agree, best_has, best_agree)
                best_has = np.where(better, st.has, best_has)
                best_agree = np.where(better, st.agree, best_agree)
                win = best_win = np.where(better, st.win, best_win)
            cost.append(cost_t), tokens.append(tokens_t), samples.append(samples_t)
            winner.append(win), short.append(short_t)
        winner = np.stack(winner)
        right = self.bank.correct[np.arange(P), np.maximum(winner, 0)] & (winner >= 0)
        return Chain(
            stats=stats,
            final=final,
            cost=np.stack(cost),
            tokens=np.stack(tokens),
            samples=np.stack(samples),
            winner=winner,
            correct=np.where(self.bank.graded, right.astype(float), np.nan),
            short=np.stack(short),
        )

    def run(self, tables: Tables, rows: np.ndarray, out: OutcomeArrays) -> list[int]:
        """Write configurations ``rows`` of ``tables`` into ``out``; returns the rows that must go
        through the general machine instead (a tier asks for a sample the bank lacks: the machine
        raises the precise error). Configurations on the same chain differ only in their
        thresholds: they are evaluated together."""
        groups = defaultdict(list)
        for c in rows.tolist():
            groups[id(self.chain(tables, c))].append(c)
        per = max(1, GROUP_ELEMENTS // max(1, self.P))
        general: list[int] = []
        for members in groups.values():
            chain = self.chain(tables, members[0])
            for i in range(0, len(members), per):
                general += self._group(tables, chain, np.array(members[i : i + per]), out)
        return general

    def _group(self, tables: Tables, chain: Chain, cs: np.ndarray, out: OutcomeArrays) -> list[int]:
        """Configurations ``cs`` (one chain, any thresholds) over every problem: tier by tier,
        :func:`rules.after_tier` says whether a problem escalates or stops there (and why)."""
        G, P = cs.size, self.P
        stop = np.zeros((G, P), dtype=np.int64)
        reason = np.zeros((G, P), dtype=np.int64)
        alive = np.ones((G, P), dtype=bool)
        escalate = np.zeros((G, P), dtype=bool)
        for t in range(chain.final + 1):
            final = t == chain.final
            if not final:
                for g, c in enumerate(cs.tolist()):
                    escalate[g] = veval(tables.asts[tables.escalate_if[c, t]], chain.stats[t].signals, P)
            step = rules.after_tier(np.full((G, P), final), escalate)
            for after, why in rules.STOP_REASONS.items():
                reason[alive & (step == after)] = REASONS.index(why)
            alive &= step == rules.AfterTier.ESCALATE
            stop += alive
            if not alive.any():
                break
        for t in range(chain.final + 1):
            out.reached[cs, :, t] = stop >= t
        out.tiers_used[cs] = stop + 1
        out.reason[cs] = reason
        at = stop * P + np.arange(P)  # flat index of (stop tier, problem) in the chain's arrays
        for name in ("cost", "tokens", "samples", "winner", "correct"):
            getattr(out, name)[cs] = np.take(getattr(chain, name), at)
        return cs[np.take(chain.short, at).any(axis=1)].tolist()
