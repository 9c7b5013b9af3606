"""The one canonical printer of markers and numbers.

Every place that writes a marker (the marker AST's ``str``, the compiler's plan ``marker``,
the demo's baselines, the zoo's ladder) calls these; none spells ``mv_..._k.._t..`` itself.
Canonical text: ``t0.70`` → ``t0.7``, ``k08`` → ``k8``, ``t1`` → ``t1.0``; the seed markers
print back byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from cascadec.core.kinds import Kind

PREFIX: dict[Kind, str] = {
    Kind.PLAIN: "",
    Kind.MV: "mv_",
    Kind.CASCADE: "mv_cascade_",
    Kind.ENTROPY_CASCADE: "mv_entropy_cascade_",
}


def format_temperature(t: float) -> str:
    """Shortest decimal that reads back as ``t``, always with a decimal point: 0.7, 0.0, 1.0, 0.00001."""
    text = format(Decimal(repr(float(t))), "f")
    if "." not in text:
        text += ".0"
    whole, frac = text.split(".")
    frac = frac.rstrip("0") or "0"
    return f"{whole}.{frac}"


def format_number(value: float) -> str:
    """Shortest text that reads back as the same float; integers without ``.0`` (conditions)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def tier_text(name: str, k: int, temperature: float) -> str:
    """One tier of a marker: ``7B_k4_t0.7`` (``name``: the alias, or the full model id)."""
    return f"{name}_k{int(k)}_t{format_temperature(temperature)}"


def marker_text(kind: Kind | str, tiers: Iterable[tuple[str, int, float]]) -> str:
    """The canonical marker of ``kind`` over ``(name, k, temperature)`` tiers.

    A plain marker is its model's name alone (it runs k1_t0.0 by definition).
    """
    kind = Kind(kind)
    tiers = list(tiers)
    if kind.single_tier and len(tiers) != 1:
        raise ValueError(f"a {kind} marker has exactly one tier, got {len(tiers)}")
    if not tiers:
        raise ValueError("a marker has at least one tier")
    if kind is Kind.PLAIN:
        return tiers[0][0]
    return PREFIX[kind] + "_".join(tier_text(*t) for t in tiers)


def vote_marker(name: str, k: int, temperature: float) -> str:
    """``mv_<name>_k<k>_t<T>``: a majority vote (the demo's and the zoo's baselines)."""
    return marker_text(Kind.MV, [(name, k, temperature)])
