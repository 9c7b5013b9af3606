"""Strategy kinds: the one list, and which of them escalate.

A ``StrEnum``, so plan JSON, specs and tables keep the plain strings (``"cascade"``) and a
kind compares equal to its string.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    PLAIN = "plain"  # one greedy answer
    MV = "mv"  # majority vote over k samples
    CASCADE = "cascade"  # tiers, escalating while the vote is not confident
    ENTROPY_CASCADE = "entropy_cascade"  # same, driven by answer entropy, with exploration

    @property
    def escalates(self) -> bool:
        """Whether a strategy of this kind has tiers that hand over to the next one."""
        return self in CASCADES

    @property
    def single_tier(self) -> bool:
        return self in (Kind.PLAIN, Kind.MV)


KINDS: tuple[Kind, ...] = tuple(Kind)
CASCADES: frozenset[Kind] = frozenset({Kind.CASCADE, Kind.ENTROPY_CASCADE})
