"""Majority vote over equivalent answers, with a tie-break that never depends on dict order.

Only samples with an answer vote: a sample without one, or cut off at ``max_tokens``
(``finish_reason == "length"``), is counted in ``drawn`` but belongs to no cluster
(lm-evaluation-harness's pitfall was to let "invalid" win as a class of its own).

Clustering is greedy in sample order: each answer joins the first cluster whose
*representative* (its earliest answer) is equivalent to it — in both directions
(:meth:`Equivalence.same`: ``{1,3}`` and ``(3,1)`` are two clusters, although a gold ``{1,3}``
would accept ``(3,1)``) — else it starts a new cluster.
Comparing with representatives only keeps the result independent of non-transitive
equivalence quirks and identical from run to run.

Tie-break rule (documented, tested): clusters are ranked by
  1. most votes;
  2. then the highest mean token logprob averaged over the cluster's samples — used only when
     every voting sample has logprobs (so a backend without logprobs never half-applies it);
  3. then the earliest first sample (lowest position in sample order: earlier rounds and
     lower sample indices first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cascadec.runtime import rules
from cascadec.runtime.equivalence import Equivalence


@dataclass(frozen=True)
class Ballot:
    """One sample as the vote sees it: its answer (None: does not vote) and its confidence."""

    answer: str | None
    mean_logprob: float | None = None


@dataclass(frozen=True)
class Cluster:
    answer: str  # the representative: the earliest member's answer
    members: tuple[int, ...]  # positions of the member samples in the ballot sequence
    mean_logprob: float | None  # mean of the members' mean logprobs, None if any lacks one

    @property
    def count(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Vote:
    clusters: tuple[Cluster, ...]  # ranked: the winner first
    drawn: int  # samples drawn, voting or not

    @property
    def voters(self) -> int:
        return sum(c.count for c in self.clusters)

    @property
    def winner(self) -> str | None:
        return self.clusters[0].answer if self.clusters else None

    @property
    def top(self) -> int:
        return self.clusters[0].count if self.clusters else 0

    @property
    def second(self) -> int:
        return self.clusters[1].count if len(self.clusters) > 1 else 0

    def decided(self, remaining: int) -> bool:
        """True when ``remaining`` more samples could not change the winner (early stopping)."""
        return rules.vote_decided(self.top, self.second, remaining)

    def counts(self) -> dict[str, int]:
        """Answer → votes, in rank order (JSON-friendly)."""
        return {c.answer: c.count for c in self.clusters}


def tally(ballots: Sequence[Ballot], equivalence: Equivalence) -> Vote:
    """Cluster the voting ballots by equivalence and rank the clusters (see module docstring)."""
    distinct = sorted({b.answer for b in ballots if b.answer is not None})
    equivalence.prepare(((a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]), both_ways=True)
    reps: list[str] = []
    members: list[list[int]] = []
    for pos, ballot in enumerate(ballots):
        if ballot.answer is None:
            continue
        for ci, rep in enumerate(reps):
            if equivalence.same(rep, ballot.answer):
                members[ci].append(pos)
                break
        else:
            reps.append(ballot.answer)
            members.append([pos])
    use_logprobs = all(b.mean_logprob is not None for b in ballots if b.answer is not None)
    clusters = []
    for rep, mem in zip(reps, members, strict=True):
        lps = [ballots[i].mean_logprob for i in mem]
        mean_lp = sum(lps) / len(lps) if use_logprobs else None  # type: ignore[arg-type]
        clusters.append(Cluster(rep, tuple(mem), mean_lp))
    clusters.sort(
        key=lambda c: (-c.count, -(c.mean_logprob if c.mean_logprob is not None else 0.0), c.members[0])
    )
    return Vote(tuple(clusters), len(ballots))


def answer_entropy(vote: Vote) -> float:
    """Shannon entropy (nats) of the answer distribution over the voting samples; 0 if none vote."""
    n = vote.voters
    if n == 0:
        return 0.0
    return -sum((c.count / n) * math.log(c.count / n) for c in vote.clusters)
