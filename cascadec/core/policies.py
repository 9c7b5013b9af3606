"""The policy vocabulary, each once: final-answer policies, exploration actions, adaptive-k
policies and equivalence modes.

``StrEnum``s, as :class:`cascadec.core.kinds.Kind`: specs, plans and tables keep the plain
strings (``"pooled"``), a value compares equal to its string, and code names the member
(``FinalAnswer.POOLED``), never the literal.
"""

from __future__ import annotations

from enum import StrEnum


class FinalAnswer(StrEnum):
    """Which answer a problem ends with once its last tier has run."""

    LAST_TIER = "last_tier"  # the vote of the tier that stopped
    MOST_CONFIDENT = "most_confident"  # the most confident tier's vote
    POOLED = "pooled"  # one vote over every tier's samples


class ExploreAction(StrEnum):
    """What a tier's exploration rule does when it fires."""

    SKIP_TO_TOP = "skip_to_top"  # straight to the last tier
    RAISE_TEMPERATURE = "raise_temperature"  # resample the tier hotter


class AdaptiveKPolicy(StrEnum):
    """How the first tier's k (and start tier) adapts per problem."""

    FIXED = "fixed"
    DIFFICULTY_BUCKETS = "difficulty_buckets"
    BUDGET = "budget"


class EquivalenceMode(StrEnum):
    """How two answers are judged the same: math-verify, or exact after normalisation."""

    MATH = "math"
    EXACT = "exact"


__all__ = ["AdaptiveKPolicy", "EquivalenceMode", "ExploreAction", "FinalAnswer"]
