"""The decision rules, once, over plain numbers or numpy arrays.

What a tier does once its asked samples are in is a handful of comparisons: is the vote
settled (early stop), does another round fit the budget, and then — in this order — is the
tier confident, does it explore, does it retry, is it the last tier, or does it escalate. The
live runtime asks them for one problem at a time (:func:`cascadec.runtime.decide.decide`, with
Python numbers and booleans); the bank simulator asks them for every (configuration, problem)
at once (:mod:`cascadec.sim.machine`, :mod:`cascadec.sim.sweep`, with numpy arrays). Both call
the functions below, so the order of the rules, the budget check and the early-stop rule exist
once. Every function takes either plain numbers or arrays (broadcasting as numpy does) and
returns a plain value for plain inputs, an array for arrays.

No limit is ``math.inf`` (or any number larger than every count): ``over_budget`` then never holds.
"""

from __future__ import annotations

import math
from enum import IntEnum
from functools import reduce
from typing import Any

import numpy as np

from cascadec.runtime.outcomes import StopReason

NO_LIMIT = math.inf


def _array(*xs: Any) -> bool:
    return any(isinstance(x, np.ndarray) for x in xs)


def _not(x):
    return np.logical_not(x) if _array(x) else not x


def _and(*xs):
    return reduce(np.logical_and, xs) if _array(*xs) else all(xs)


def _or(*xs):
    return reduce(np.logical_or, xs) if _array(*xs) else any(xs)


def _where(cond, a, b):
    return np.where(cond, a, b) if _array(cond, a, b) else (a if cond else b)


def _min(a, b):
    return np.minimum(a, b) if _array(a, b) else min(a, b)


# --- early stopping, rounds and the budget ------------------------------------------------------
def vote_decided(top, second, remaining):
    """The exact early-stop rule (``decided``): ``remaining`` more samples cannot change the winner."""
    return _and(top > 0, top - second > remaining)


def round_n(remaining, round_size):
    """How many of the ``remaining`` planned samples the next round draws (``round_size`` 0:
    no early stopping, all of them at once)."""
    return _where(round_size > 0, _min(round_size, remaining), remaining)


def keep_sampling(remaining, settled):
    """Whether the tier asks another round: samples still planned and the vote not settled."""
    return _and(remaining > 0, _not(settled))


def over_budget(samples, cost, n, max_samples=NO_LIMIT, max_cost=NO_LIMIT):
    """Whether drawing ``n`` more samples breaks a problem's budget: more than ``max_samples``
    samples in all, or a cost (``cost``: spent so far) that already reached ``max_cost``."""
    return _or(samples + n > max_samples, cost >= max_cost)


# --- the final answer ---------------------------------------------------------------------------
def more_confident(has_winner, agreement, best_has_winner, best_agreement):
    """``most_confident``: whether a tier (that ran after the best so far) takes its place — it
    has a winner where the best has none, or as much agreement (ties: the later, stronger tier)."""
    return _or(has_winner > best_has_winner, _and(has_winner == best_has_winner, agreement >= best_agreement))


# --- the rule order once a tier drew what it planned -------------------------------------------
class AfterTier(IntEnum):
    """What a tier does once its planned samples are in (an array of these codes, or one)."""

    CONFIDENT = 0  # stop: the escalation condition does not hold
    SKIP_TO_TOP = 1  # exploration: enter the last tier
    EXPLORE = 2  # exploration: extra samples on this tier, hotter (raise_temperature)
    RETRY = 3  # extra samples on this tier
    LAST_TIER = 4  # stop: nothing above it
    ESCALATE = 5  # enter the next tier


STOP_REASONS: dict[AfterTier, StopReason] = {
    AfterTier.CONFIDENT: StopReason.CONFIDENT,
    AfterTier.LAST_TIER: StopReason.LAST_TIER,
}


def is_final(pos, tiers, escalates):
    """Whether tier ``pos`` of ``tiers`` is the last one a problem can reach from it: the last
    tier, or a tier without an escalation condition (``escalates`` False)."""
    return _or(pos == tiers - 1, _not(escalates))


def after_tier(
    final,
    escalate,
    explore=False,
    skip=False,
    explore_fits=True,
    retry=False,
    retry_fits=True,
):
    """The rules in their order, as an :class:`AfterTier` (or an array of its codes):

    1. a tier that can escalate (not ``final``) whose condition does not hold (``escalate``
       False) is **confident**;
    2. exploration (``explore``: the tier has a rule, has not explored yet and ``explore.when``
       holds), only where escalation is due: ``skip`` (skip_to_top) **skips to the top**; a
       raise_temperature exploration **explores** when its samples fit the budget
       (``explore_fits``), else the rules go on;
    3. **retry** (``retry``: retries left and ``retry.when`` holds) when its samples fit
       (``retry_fits``) — on a final tier ``retry.when`` alone decides;
    4. a final tier stops (**last tier**); any other **escalates** (entering a tier checks the
       budget on its own: :func:`over_budget` with its k).
    """
    due = _and(_not(final), escalate)
    exploring = _and(due, explore)
    return _where(
        _and(_not(final), _not(escalate)),
        AfterTier.CONFIDENT,
        _where(
            _and(exploring, skip),
            AfterTier.SKIP_TO_TOP,
            _where(
                _and(exploring, _not(skip), explore_fits),
                AfterTier.EXPLORE,
                _where(
                    _and(retry, retry_fits),
                    AfterTier.RETRY,
                    _where(final, AfterTier.LAST_TIER, AfterTier.ESCALATE),
                ),
            ),
        ),
    )


__all__ = [
    "NO_LIMIT",
    "STOP_REASONS",
    "AfterTier",
    "after_tier",
    "is_final",
    "keep_sampling",
    "more_confident",
    "over_budget",
    "round_n",
    "vote_decided",
]
