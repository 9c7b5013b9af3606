"""Cost of a plan strategy per problem: worst case (proved) and expected (under stated assumptions).

Cost is in the registry's unit: generated tokens x the model's params. ``relative`` costs
divide by one full-length greedy answer of the most expensive model in the strategy, a unit
that reads the same for the Qwen family and the tiny zoo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cascadec.core.policies import AdaptiveKPolicy
from cascadec.core.selection import select_tiers, worst_case_samples
from cascadec.plan import PlanStrategy, PlanTier, bucket_start
from cascadec.plan import bucket_k as resolve_k


def first_tier_ks(strategy: PlanStrategy) -> list[int]:
    """Every k the first tier can take under the strategy's adaptive-k policy."""
    a, k = strategy.adaptive_k, strategy.tiers[0].k
    if a is None or a.policy == AdaptiveKPolicy.FIXED:
        return [k]
    if a.policy == AdaptiveKPolicy.DIFFICULTY_BUCKETS:
        return sorted({k, *(bk for _, bk in a.buckets)})
    return list(range(a.min_k, a.max_k + 1))


def entry_choices(strategy: PlanStrategy) -> list[tuple[int, int]]:
    """Every (first-tier k, start tier) pair the adaptive policy can give a problem: the step
    functions of difficulty are evaluated at each bucket bound and above them all, plus the
    written k at the first tier for a problem without a difficulty."""
    a, k = strategy.adaptive_k, strategy.tiers[0].k
    if a is None or a.policy != AdaptiveKPolicy.DIFFICULTY_BUCKETS or not a.start_tiers:
        return [(fk, 0) for fk in first_tier_ks(strategy)]
    points = sorted({b for b, _ in (*a.buckets, *a.start_tiers)}) + [math.inf]
    pairs = {(k, 0), *((resolve_k(a, d, k), bucket_start(a, d)) for d in points)}
    return sorted(pairs)


def paths(strategy: PlanStrategy) -> list[tuple[PlanTier, ...]]:
    """The tier sequences a problem can run (one per first-tier k and start tier; skipping applied)."""
    a = strategy.adaptive_k
    out = []
    for k, start in entry_choices(strategy):
        tiers = (strategy.tiers[0].model_copy(update={"k": k}), *strategy.tiers[1:])
        out.append(select_tiers(tiers, k, a.escalation_k_threshold if a else None, start))
    return out


@dataclass(frozen=True)
class Cost:
    samples: float
    cost: float
    relative: float


def _unit(strategy: PlanStrategy) -> float:
    top = max(strategy.tiers, key=lambda t: t.cost_per_token)
    return top.cost_per_token * top.max_tokens


def worst_case(strategy: PlanStrategy) -> Cost:
    """Every tier runs with every retry at max_tokens: an upper bound the runtime cannot exceed."""
    best = Cost(0, 0, 0)
    for tiers in paths(strategy):
        samples = sum(worst_case_samples(t) for t in tiers)
        cost = sum(worst_case_samples(t) * t.max_tokens * t.cost_per_token for t in tiers)
        if cost > best.cost:
            best = Cost(samples, cost, cost / _unit(strategy))
    return best


def expected(strategy: PlanStrategy, escalation_rate: float = 0.3, token_share: float = 0.25) -> Cost:
    """Expected cost if each tier escalates (and retries) with ``escalation_rate`` and a sample uses
    ``token_share`` of max_tokens. Averaged over the first-tier ks the policy allows (uniformly)."""
    results = []
    for tiers in paths(strategy):
        samples = cost = 0.0
        for i, t in enumerate(tiers):
            reach = escalation_rate**i
            retry = escalation_rate * t.retry.max * t.retry.extra_k if t.retry else 0.0
            n = reach * (t.k + retry)
            samples += n
            cost += n * token_share * t.max_tokens * t.cost_per_token
        results.append((samples, cost))
    samples = sum(r[0] for r in results) / len(results)
    cost = sum(r[1] for r in results) / len(results)
    return Cost(samples, cost, cost / _unit(strategy))


def first_tier_floor(strategy: PlanStrategy) -> tuple[int, float]:
    """(samples, worst-case cost) of the cheapest first tier: what every problem may have to pay."""
    firsts = [p[0] for p in paths(strategy)]
    return (
        min(worst_case_samples(t) for t in firsts),
        min(worst_case_samples(t) * t.max_tokens * t.cost_per_token for t in firsts),
    )
