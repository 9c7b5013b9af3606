"""The typed marker AST: what a marker says, independent of how it was spelled.

``str()`` of any node is its canonical text, so ``parse_marker(str(m)) == m``.
Positions are not part of the AST (they live in diagnostics), so equal strategies compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from cascadec.errors import Diagnostic

Kind = Literal["plain", "mv", "cascade", "entropy_cascade"]
KINDS: tuple[Kind, ...] = ("plain", "mv", "cascade", "entropy_cascade")
PREFIX: dict[Kind, str] = {
    "plain": "",
    "mv": "mv_",
    "cascade": "mv_cascade_",
    "entropy_cascade": "mv_entropy_cascade_",
}


def format_temperature(t: float) -> str:
    """Shortest decimal that reads back as ``t``, always with a decimal point: 0.7, 0.0, 1.0, 0.00001."""
    text = format(Decimal(repr(float(t))), "f")
    if "." not in text:
        text += ".0"
    whole, frac = text.split(".")
    frac = frac.rstrip("0") or "0"
    return f"{whole}.{frac}"


@dataclass(frozen=True)
class MarkerTier:
    """One tier: ``k`` samples from ``model`` at ``temperature``."""

    alias: str | None  # the registry alias as written (None when a full model id was written)
    model: str  # the resolved model id
    k: int = 1
    temperature: float = 0.0

    def __str__(self) -> str:
        return f"{self.alias or self.model}_k{self.k}_t{format_temperature(self.temperature)}"

    @property
    def is_greedy(self) -> bool:
        return self.k == 1 and self.temperature == 0.0


@dataclass(frozen=True)
class Marker:
    """A parsed marker. ``warnings`` are findings that do not stop it from running."""

    kind: Kind
    tiers: tuple[MarkerTier, ...]
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a marker has at least one tier")
        if self.kind in ("plain", "mv") and len(self.tiers) != 1:
            raise ValueError(f"a {self.kind} marker has exactly one tier")

    def __str__(self) -> str:
        if self.kind == "plain":
            tier = self.tiers[0]
            return tier.alias or tier.model
        return PREFIX[self.kind] + "_".join(str(t) for t in self.tiers)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(t.model for t in self.tiers)
