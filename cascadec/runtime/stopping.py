"""When a tier may stop sampling before its k: the early-stopping rules of a vote.

Why: the exact rule ("the remaining samples cannot change the winner") still draws most of
k; the literature stops far earlier at < 0.5 pt loss. Rules (the plan's ``early_stop.rule``):

- ``decided`` — exact: stop when ``top - second > remaining``. The final answer is then the
  very one fixed k would give on the same samples (a property test holds it to that). Only
  for majority votes (a weighted vote has no bound on an unseen sample's weight).
- ``adaptive`` — Adaptive-Consistency (Aggarwal et al., 2023): stop when the posterior
  probability that the current leader has the largest answer probability reaches
  ``confidence``: Beta(v1 + 1, v2 + 1) for two answers (one answer: v2 = 0), a uniform
  Dirichlet over the observed answers for more (Monte Carlo with a fixed seed, so a bank
  replays it exactly).
- ``esc`` — Early-Stopping Self-Consistency (Li et al., 2024): stop when the last ``window``
  samples all answered and all fell in one answer cluster.
- ``weighted`` — the adaptive rule on confidence-weighted pseudo-counts (each cluster's
  weight, scaled so the kept answering samples sum to their *effective* number, Kish's
  (sum w)^2 / sum w^2): the leader's share of the confidence, not of the votes, decides, and a
  vote carried by one far surer trace counts as about one sample, not n; with equal weights
  it is ``adaptive``.

All are pure functions of the samples drawn so far, so the simulator replays them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from cascadec.runtime.vote_policy import PolicyVote
from cascadec.runtime.voting import Vote
from cascadec.spec.vote import EarlyStopFields, StopRule

MC_DRAWS = 20_000  # Dirichlet Monte Carlo draws: standard error < 0.002 near 0.95
MC_SEED = 0


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 (pure Python, no scipy)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1 - x) / b


@lru_cache(maxsize=4096)
def _dirichlet_leader(alphas: tuple[float, ...]) -> float:
    import numpy as np

    rng = np.random.default_rng(MC_SEED)
    draws = rng.gamma(np.asarray(alphas), size=(MC_DRAWS, len(alphas)))
    return float(np.mean(np.argmax(draws, axis=1) == 0))


def leader_probability(counts: Sequence[float]) -> float:
    """Posterior probability that the leading answer (largest count) is the most likely one.

    Counts may be real (weighted pseudo-counts). No answers: 0. One or two answers: the
    Beta posterior, exact. More: a uniform Dirichlet posterior, seeded Monte Carlo.
    """
    c = sorted((float(v) for v in counts if v > 0), reverse=True)
    if not c:
        return 0.0
    if len(c) <= 2:
        v1, v2 = c[0], (c[1] if len(c) == 2 else 0.0)
        return 1.0 - beta_cdf(0.5, v1 + 1.0, v2 + 1.0)
    return _dirichlet_leader(tuple(round(v + 1.0, 9) for v in c))


def esc_agrees(vote: Vote, window: int) -> bool:
    """The last ``window`` drawn samples all answered and fell in one cluster."""
    if vote.drawn < window:
        return False
    cluster_of = {m: ci for ci, c in enumerate(vote.clusters) for m in c.members}
    last = [cluster_of.get(pos) for pos in range(vote.drawn - window, vote.drawn)]
    return last[0] is not None and all(x == last[0] for x in last)


def effective_voters(weighted: PolicyVote) -> float:
    """Kish's effective sample size of the answering kept samples: (sum w)^2 / sum w^2.

    n when all weigh the same; about 1 when one trace carries nearly all of the weight.
    """
    total = sum(c.weight for c in weighted.clusters)
    squares = sum(c.squares for c in weighted.clusters)
    if total <= 0 or squares <= 0:
        return float(sum(c.count for c in weighted.clusters))
    return total * total / squares


def weighted_pseudo_counts(weighted: PolicyVote) -> list[float]:
    """Cluster weights scaled so the answering kept samples sum to their effective number."""
    total = sum(c.weight for c in weighted.clusters)
    if not weighted.clusters or total <= 0:
        return [float(c.count) for c in weighted.clusters]
    n = effective_voters(weighted)
    return [c.weight * n / total for c in weighted.clusters]


def should_stop(settings: EarlyStopFields, vote: Vote, weighted: PolicyVote, remaining: int) -> bool:
    """Whether a tier with ``remaining`` planned samples left stops now (always False at 0 left)."""
    if remaining <= 0:
        return False
    rule = StopRule(settings.rule)
    if rule is StopRule.DECIDED:
        return vote.decided(remaining)
    if rule is StopRule.ESC:
        return esc_agrees(vote, settings.window)
    if rule is StopRule.ADAPTIVE:
        return leader_probability([c.count for c in vote.clusters]) >= settings.confidence
    return leader_probability(weighted_pseudo_counts(weighted)) >= settings.confidence
