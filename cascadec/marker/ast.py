"""The typed marker AST: what a marker says, independent of how it was spelled.

``str()`` of any node is its canonical text, so ``parse_marker(str(m)) == m``.
Positions are not part of the AST (they live in diagnostics), so equal strategies compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cascadec.core.kinds import KINDS, Kind
from cascadec.core.printer import format_temperature, marker_text, tier_text
from cascadec.errors import Diagnostic

__all__ = ["KINDS", "Kind", "Marker", "MarkerTier", "format_temperature"]


@dataclass(frozen=True)
class MarkerTier:
    """One tier: ``k`` samples from ``model`` at ``temperature``."""

    alias: str | None  # the registry alias as written (None when a full model id was written)
    model: str  # the resolved model id
    k: int = 1
    temperature: float = 0.0

    def __str__(self) -> str:
        return tier_text(self.alias or self.model, self.k, self.temperature)

    @property
    def is_greedy(self) -> bool:
        return self.k == 1 and self.temperature == 0.0


@dataclass(frozen=True)
class Marker:
    """A parsed marker. ``warnings`` are findings that do not stop it from running."""

    kind: Kind
    tiers: tuple[MarkerTier, ...]
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False)
    place: Any = field(
        default=None, compare=False, repr=False
    )  # marker.checks.MarkerPlace: where it was written

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))
        if not self.tiers:
            raise ValueError("a marker has at least one tier")
        if self.kind in ("plain", "mv") and len(self.tiers) != 1:
            raise ValueError(f"a {self.kind} marker has exactly one tier")

    def __str__(self) -> str:
        return marker_text(self.kind, [(t.alias or t.model, t.k, t.temperature) for t in self.tiers])

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(t.model for t in self.tiers)
