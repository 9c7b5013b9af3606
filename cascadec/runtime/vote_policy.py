"""Voting policies over a tier's clustered samples: majority, confidence-weighted, filtered.

Why: a majority vote counts a confused trace like a careful one. The policies reuse the
vote's clusters (:func:`cascadec.runtime.voting.tally` decides which answers are the same)
and only change how much each sample counts:

- ``majority``: every sample weighs 1 — the ranking is exactly :func:`tally`'s;
- ``weighted``: a sample weighs its trace confidence (``metric``), through a softmax when the
  vote has a temperature: ``exp((score - best score) / temperature)`` (CISC's weighting; the
  default ``logprob`` metric — mean chosen-token logprob — at temperature 0.01); without
  one, the raw confidence (token confidences are >= 0; DeepConf's weighted vote);
- ``filtered``: keep the ``keep`` share of the most confident samples (rounded up, at least
  one; equal confidences keep the earlier sample), then the weighted vote (DeepConf-offline);
- ``best``: keep only the most confident sample (equal confidences: the earlier): best-of-n,
  e.g. by a reward model's ``score`` (Qwen2.5-Math's RM@n).

Ranking and ties (documented, tested): clusters rank by total weight, then by number of
votes, then by the earliest member in sample order. With ``majority`` the tally's own order
(votes, mean logprob, earliest) is kept as is.

``share`` (the ``weighted_agreement`` signal) is the winner's weight over the weight of
*every* kept sample, answering or not — so under ``majority`` it equals ``agreement``
(top / k) and a tier whose confident samples give no answer does not look decided.

If any drawn sample lacks the metric (no logprobs, or no token records for a token
confidence: a backend without logprobs, an old bank), the policy falls back to ``majority``
for that vote (``applied`` says so) rather than half-apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cascadec.runtime.confidence import TraceConfidence
from cascadec.runtime.voting import Vote
from cascadec.spec.vote import ConfidenceMetric, VotePolicy, VoteSpec


@dataclass(frozen=True)
class WeightedCluster:
    answer: str
    members: tuple[int, ...]  # kept member positions in the ballot sequence
    weight: float
    square: float = math.nan  # sum of the members' squared weights (NaN: all weigh 1, = count)

    @property
    def squares(self) -> float:
        return float(self.count) if math.isnan(self.square) else self.square

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


def trace_scores(
    settings: VoteSpec,
    confidences: Sequence[TraceConfidence | None],
    logprobs: Sequence[float | None] | None,
    scores: Sequence[float | None] | None = None,
) -> list[float] | None:
    """Each drawn sample's score by the vote's metric (None when any sample lacks it)."""
    metric = ConfidenceMetric(settings.metric)
    if not metric.is_token_confidence():
        values = logprobs if metric is ConfidenceMetric.LOGPROB else scores
        if values is None or any(v is None or not math.isfinite(v) for v in values):
            return None
        return [float(v) for v in values]  # type: ignore[arg-type]
    if any(c is None for c in confidences):
        return None
    return [c.get(settings.metric) for c in confidences]  # type: ignore[union-attr]


def softmax_weights(scores: Sequence[float], temperature: float | None) -> list[float]:
    """``exp((s - max s) / temperature)`` (the best sample weighs 1); raw scores without one."""
    if temperature is None or not scores:
        return [max(float(s), 0.0) for s in scores]
    best = max(scores)
    return [math.exp((s - best) / temperature) for s in scores]


def apply_policy(
    vote: Vote,
    confidences: Sequence[TraceConfidence | None],
    settings: VoteSpec = MAJORITY,
    logprobs: Sequence[float | None] | None = None,
    scores: Sequence[float | None] | None = None,
) -> PolicyVote:
    """Re-rank ``vote``'s clusters under ``settings``.

    ``confidences``, ``logprobs`` (each sample's mean chosen-token logprob) and ``scores`` (its
    external score) are per drawn sample, in order; ``logprobs`` is needed by the ``logprob``
    metric only, ``scores`` by the ``score`` metric only.
    """
    if len(confidences) != vote.drawn:
        raise ValueError(f"{len(confidences)} confidences for {vote.drawn} samples")
    if logprobs is not None and len(logprobs) != vote.drawn:
        raise ValueError(f"{len(logprobs)} logprobs for {vote.drawn} samples")
    if scores is not None and len(scores) != vote.drawn:
        raise ValueError(f"{len(scores)} scores for {vote.drawn} samples")
    policy = VotePolicy(settings.policy)
    values = None if policy is VotePolicy.MAJORITY else trace_scores(settings, confidences, logprobs, scores)
    if policy is VotePolicy.MAJORITY or values is None:
        return majority_vote(vote)
    if policy is VotePolicy.FILTERED:
        kept = kept_positions(values, settings.keep)
    elif policy is VotePolicy.BEST:
        kept = kept_positions(values, 1.0 / max(len(values), 1))
    else:
        kept = tuple(range(vote.drawn))
    weights = softmax_weights(values, settings.softmax_temperature())
    keep_set = set(kept)
    clusters = []
    for c in vote.clusters:
        members = tuple(m for m in c.members if m in keep_set)
        if members:
            w = [weights[m] for m in members]
            clusters.append(WeightedCluster(c.answer, members, sum(w), sum(x * x for x in w)))
    clusters.sort(key=lambda c: (-c.weight, -c.count, c.members[0]))
    return PolicyVote(tuple(clusters), sum(weights[i] for i in kept), kept, policy)
