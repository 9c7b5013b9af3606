"""Cost-aware tier selection and worst-case sample counts: stated once for the compiler, the plan
resolver, the cost model, the dry-run routing and the simulator.

Cost-aware skipping (the original system's ``escalation_k_threshold``): when the first tier's
k reaches the threshold, a problem is hard enough that the small model is not worth asking —
it starts at the second tier. A per-difficulty start tier (``start_tiers``) moves the start
further: hard problems go straight to the model that can answer them. The last tier always runs. Worst case: a tier draws its k, every retry's ``extra_k`` and a
resampling exploration (``raise_temperature``, default ``extra_k`` = k).

Duck-typed over the plan's tier objects (anything with ``k``, ``retry``, ``explore``) so this
leaf package needs no import of the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from cascadec.core.policies import ExploreAction

T = TypeVar("T")


class _Retry(Protocol):
    max: int
    extra_k: int


class _Explore(Protocol):
    action: str
    extra_k: int | None


class TierLike(Protocol):
    k: int
    retry: Any  # _Retry | None
    explore: Any  # _Explore | None


def start_tier(first_k: int, threshold: int | None, n_tiers: int, floor: int = 0) -> int:
    """Position of the first tier a problem runs: at least ``floor`` (its difficulty's start tier),
    at least 1 when its first-tier k reaches the threshold, never past the last tier."""
    skip = 1 if threshold is not None and n_tiers > 1 and first_k >= threshold else 0
    return max(0, min(max(skip, floor), n_tiers - 1))


def select_tiers(tiers: Sequence[T], first_k: int, threshold: int | None, floor: int = 0) -> tuple[T, ...]:
    """The tiers a problem runs, cost-aware skipping applied (``tiers[0]`` already has ``first_k``)."""
    return tuple(tiers[start_tier(first_k, threshold, len(tiers), floor) :])


def worst_case_samples(tier: TierLike, k: int | None = None) -> int:
    """Most samples a tier can draw: k, every retry, and a resampling exploration."""
    k = tier.k if k is None else k
    extra = tier.retry.max * tier.retry.extra_k if tier.retry is not None else 0
    if tier.explore is not None and tier.explore.action == ExploreAction.RAISE_TEMPERATURE:
        extra += tier.explore.extra_k or k
    return k + extra
