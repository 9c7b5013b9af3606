"""Voting policies over a tier's clustered samples: majority, confidence-weighted, filtered.

Why: a majority vote counts a confused trace like a careful one. The policies reuse the
vote's clusters (:func:`cascadec.runtime.voting.tally` decides which answers are the same)
and only change how much each sample counts:

- ``majority``: every sample weighs 1 — the ranking is exactly :func:`tally`'s;
- ``weighted``: a sample weighs its trace confidence (``metric``: ``lowest_group`` by
  default; CISC / DeepConf's confidence-weighted vote);
- ``filtered``: keep the ``keep`` share of the most confident samples (rounded up, at least
  one; equal confidences keep the earlier sample), then the weighted vote (DeepConf-offline).

Ranking and ties (documented, tested): clusters rank by total weight, then by number of
votes, then by the earliest member in sample order. With ``majority`` the tally's own order
(votes, mean logprob, earliest) is kept as is.

``share`` (the ``weighted_agreement`` signal) is the winner's weight over the weight of
*every* kept sample, answering or not — so under ``majority`` it equals ``agreement``
(top / k) and a tier whose confident samples give no answer does not look decided.

If any drawn sample has no token confidence (a backend without logprobs, an old bank), the
policy falls back to ``majority`` for that vote (``applied`` says so) rather than half-apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cascadec.runtime.confidence import TraceConfidence
from cascadec.runtime.voting import Vote
from cascadec.spec.vote import VotePolicy, VoteSpec


@dataclass(frozen=True)
class WeightedCluster:
    answer: str
    members: tuple[int, ...]  # kept member positions in the ballot sequence
    weight: float

    @property
    def count(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class PolicyVote:
    clusters: tuple[WeightedCluster, ...]  # ranked: the winner first
    total_weight: float  # weight of every kept sample, voting or not
    kept: tuple[int, ...]  # positions of the kept samples
    applied: VotePolicy  # the policy actually used (majority when confidences are missing)

    @property
    def winner(self) -> str | None:
        return self.clusters[0].answer if self.clusters else None

    @property
    def share(self) -> float:
        """The winner's weight over all kept weight (0 when nothing is kept or nobody answers)."""
        if not self.clusters or self.total_weight <= 0:
            return 0.0
        return self.clusters[0].weight / self.total_weight

    def weights(self) -> dict[str, float]:
        """Answer → weight, in rank order (JSON-friendly)."""
        return {c.answer: round(c.weight, 6) for c in self.clusters}


MAJORITY = VoteSpec()


def kept_positions(scores: Sequence[float], keep: float) -> tuple[int, ...]:
    """Positions of the ``keep`` share of highest scores (ceil, >= 1); ties keep earlier positions."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    n = len(scores)
    if n == 0:
        return ()
    m = max(1, math.ceil(keep * n - 1e-9))
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    return tuple(sorted(order[:m]))


def majority_vote(vote: Vote) -> PolicyVote:
    """The plain vote as a policy vote: every sample weighs 1, the tally's ranking."""
    clusters = tuple(WeightedCluster(c.answer, c.members, float(c.count)) for c in vote.clusters)
    return PolicyVote(clusters, float(vote.drawn), tuple(range(vote.drawn)), VotePolicy.MAJORITY)


def apply_policy(
    vote: Vote, confidences: Sequence[TraceConfidence | None], settings: VoteSpec = MAJORITY
) -> PolicyVote:
    """Re-rank ``vote``'s clusters under ``settings``; ``confidences`` is per drawn sample, in order."""
    if len(confidences) != vote.drawn:
        raise ValueError(f"{len(confidences)} confidences for {vote.drawn} samples")
    policy = VotePolicy(settings.policy)
    if policy is not VotePolicy.MAJORITY and any(c is None for c in confidences):
        policy = VotePolicy.MAJORITY
    if policy is VotePolicy.MAJORITY:
        return majority_vote(vote)
    scores = [c.get(settings.metric) for c in confidences]  # type: ignore[union-attr]
    if policy is VotePolicy.FILTERED:
        kept = kept_positions(scores, settings.keep)
    else:
        kept = tuple(range(vote.drawn))
    keep_set = set(kept)
    clusters = []
    for c in vote.clusters:
        members = tuple(m for m in c.members if m in keep_set)
        if members:
            clusters.append(WeightedCluster(c.answer, members, sum(scores[m] for m in members)))
    clusters.sort(key=lambda c: (-c.weight, -c.count, c.members[0]))
    return PolicyVote(tuple(clusters), sum(scores[i] for i in kept), kept, policy)
