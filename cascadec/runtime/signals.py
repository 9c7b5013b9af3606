"""The signals a tier's escalation, retry and exploration conditions are evaluated over.

Definitions (k = samples drawn on the tier so far, voting or not):

- ``agreement``: top cluster's votes / k — missing answers lower it, as they should;
- ``margin``: (top − second) / k;
- ``entropy``: Shannon entropy of the answer distribution over the voting samples, in nats;
- ``no_answer``: share of the k samples with no answer or truncated;
- ``mean_logprob``: mean over samples of each sample's mean chosen-token logprob;
- ``token_entropy``: mean over samples of each sample's mean per-token entropy;
- ``tokens``: tokens generated on the tier; ``k``: samples drawn;
- ``score_mean``, ``score_max``: mean and highest external score (reward model, verifier,
  judge: the bank's ``score`` column) over the tier's samples that carry one;
  ``winner_score``: the mean over the winning answer's samples that carry one;
- ``agrees_prev``: 1 when the tier's winning answer is the previous tier's (equivalent under
  the run's equivalence), 0 when not or when either has none; NaN at the first tier that ran
  (set by the job, which knows the earlier tiers: :func:`agreement_with_previous`);
- confidence signals (``weighted_agreement``, ``hybrid``, ``confidence``, ``winner_conf``,
  ``token_conf``, ``lowest_group_conf``, ``bottom10_conf``, ``tail_conf``): see
  :mod:`cascadec.spec.condition`'s table; computed from each sample's trace confidence.

``mean_logprob`` and ``token_entropy`` are NaN when the backend returned no logprobs: every
comparison with NaN is false, so a condition over them simply never fires.
Conditions are parsed once per distinct text (the compiler already checked them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Protocol

from cascadec.runtime.backends.base import Sample
from cascadec.runtime.confidence import TraceConfidence
from cascadec.runtime.vote_policy import PolicyVote
from cascadec.runtime.voting import Vote, answer_entropy
from cascadec.spec.vote import ConfidenceMetric

CONFIDENCE_SIGNALS = {  # signal -> the trace-level confidence it averages over a tier's samples
    "token_conf": "mean",
    "lowest_group_conf": "lowest_group",
    "bottom10_conf": "bottom10",
    "tail_conf": "tail",
}


def _finite_mean(values: Sequence[float] | None) -> float | None:
    """Mean of the finite values (an engine may report -inf for a token); None when there are none."""
    if not values:
        return None
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def sample_mean_logprob(sample: Sample) -> float | None:
    """Mean chosen-token logprob of a backend sample (None without logprobs)."""
    return _finite_mean(sample.logprobs)


def sample_mean_entropy(sample: Sample) -> float | None:
    """Mean per-token entropy of a backend sample (None without entropies)."""
    return _finite_mean(sample.entropies)


class _Measured(Protocol):
    num_tokens: int
    mean_logprob: float | None
    mean_entropy: float | None
    score: float | None


def _mean(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else math.nan


def confidence_signals(
    vote: Vote,
    weighted: PolicyVote | None,
    confidences: Sequence[TraceConfidence | None],
    metric: ConfidenceMetric = ConfidenceMetric.LOWEST_GROUP,
) -> dict[str, float]:
    """The confidence signals of one tier (NaN where the samples carry no token records)."""
    k = max(vote.drawn, 1)
    agreement = vote.top / k
    share = weighted.share if weighted is not None else agreement
    known = [c for c in confidences if c is not None]
    complete = bool(known) and len(known) == len(confidences)
    out = {"weighted_agreement": share, "hybrid": math.sqrt(agreement * share)}
    for name, field in CONFIDENCE_SIGNALS.items():
        out[name] = _mean([c.get(field) for c in known]) if complete else math.nan
    out["confidence"] = _mean([c.get(metric) for c in known]) if complete else math.nan
    ranked = weighted.clusters if weighted is not None else vote.clusters
    winners = [confidences[m] for m in ranked[0].members] if ranked and complete else []
    out["winner_conf"] = _mean([c.get(metric) for c in winners if c is not None])
    return out


def score_signals(
    vote: Vote, weighted: PolicyVote | None, scores: Sequence[float | None]
) -> dict[str, float]:
    """The external-score signals of one tier (NaN where no sample carries a score)."""
    known = [s for s in scores if s is not None]
    ranked = weighted.clusters if weighted is not None else vote.clusters
    winners = [scores[m] for m in ranked[0].members] if ranked else []
    return {
        "score_mean": _mean(scores),
        "score_max": max(known) if known else math.nan,
        "winner_score": _mean(winners),
    }


def agreement_with_previous(previous: str | None, current: str | None, same, has_previous: bool) -> float:
    """``agrees_prev``: NaN without a previous tier; 1.0 when both answers exist and ``same``."""
    if not has_previous:
        return math.nan
    return 1.0 if previous is not None and current is not None and same(previous, current) else 0.0


@dataclass(frozen=True)
class TierMeasures:
    """What a tier's signals are computed from: its vote, its samples (records carry per-sample
    means), the vote under the strategy's policy (None: majority) and each sample's trace
    confidence (None: no token records)."""

    vote: Vote
    samples: Sequence[_Measured]
    weighted: PolicyVote | None = None
    confidences: Sequence[TraceConfidence | None] = ()
    metric: ConfidenceMetric = ConfidenceMetric.LOWEST_GROUP

    @property
    def k(self) -> int:
        return len(self.samples)

    @cached_property
    def confidence(self) -> dict[str, float]:
        """The confidence signals together (they share their pass over the traces)."""
        return confidence_signals(self.vote, self.weighted, self.confidences, self.metric)

    @cached_property
    def scores(self) -> dict[str, float]:
        """The external-score signals together."""
        return score_signals(self.vote, self.weighted, [getattr(s, "score", None) for s in self.samples])


Computation = Callable[[TierMeasures], float]


def _from_group(group: str, name: str) -> Computation:
    return lambda m: getattr(m, group)[name]


def _filled_by_the_job(m: TierMeasures) -> float:
    return math.nan  # the job fills it in: it knows the tiers before this one and the route


# Every signal's computation, by name, in the order a tier's signals are listed. Adding a
# signal: its row in cascadec.core.signals.SIGNALS and its function here (a test checks that the
# two name the same signals).
COMPUTATIONS: dict[str, Computation] = {
    "agreement": lambda m: m.vote.top / max(m.k, 1),
    "margin": lambda m: (m.vote.top - m.vote.second) / max(m.k, 1),
    "entropy": lambda m: answer_entropy(m.vote),
    "no_answer": lambda m: (m.k - m.vote.voters) / max(m.k, 1),
    "mean_logprob": lambda m: _mean([s.mean_logprob for s in m.samples]),
    "token_entropy": lambda m: _mean([s.mean_entropy for s in m.samples]),
    "tokens": lambda m: float(sum(s.num_tokens for s in m.samples)),
    "k": lambda m: float(m.k),
    **{
        name: _from_group("confidence", name)
        for name in ("weighted_agreement", "hybrid", *CONFIDENCE_SIGNALS, "confidence", "winner_conf")
    },
    **{name: _from_group("scores", name) for name in ("score_mean", "score_max", "winner_score")},
    "agrees_prev": _filled_by_the_job,  # agreement_with_previous
    "router_p": _filled_by_the_job,  # the route's prediction for this tier
}


def compute_signals(
    vote: Vote,
    samples: Sequence[_Measured],
    weighted: PolicyVote | None = None,
    confidences: Sequence[TraceConfidence | None] | None = None,
    metric: ConfidenceMetric = ConfidenceMetric.LOWEST_GROUP,
) -> dict[str, float]:
    """Every signal of one tier (:data:`COMPUTATIONS`), from its vote and its samples.

    ``weighted``: the vote under the strategy's policy (None: majority); ``confidences``: each
    sample's trace confidence (None: no token records, the confidence signals are NaN).
    """
    conf = confidences if confidences is not None else [None] * len(samples)
    measures = TierMeasures(vote, samples, weighted, conf, metric)
    return {name: compute(measures) for name, compute in COMPUTATIONS.items()}


@cache
def _compiled(text: str):
    from cascadec.core.conditions import parse_condition

    return parse_condition(text)


def check_condition(text: str) -> None:
    """Parse ``text`` now (raises the condition module's error) so a bad plan fails before any load."""
    _compiled(text)


def holds(text: str | None, signals: Mapping[str, float]) -> bool:
    """Whether condition ``text`` holds for ``signals``; a missing condition never holds."""
    if text is None:
        return False
    return bool(_compiled(text).evaluate(signals))


def json_safe(signals: Mapping[str, float]) -> dict[str, float | None]:
    """NaN → None, so the signals serialise as strict JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 6)) for k, v in signals.items()}
