"""The marker front-end of the tier rules: token bounds, then :mod:`cascadec.core.tier_rules`.

The rules themselves (unknown model, greedy k, greedy-only, single-tier cascade, cost
growth) are stated once in the core and shared with the compiler passes; this module adds
only what a marker has: bounds on its number tokens (checked before ``int()`` of 5000
digits), the token each finding points at, and fixes spelled as marker text.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from lark import Token

from cascadec.core import tier_rules
from cascadec.core.kinds import Kind
from cascadec.core.printer import tier_text, vote_marker
from cascadec.core.tier_rules import Finding
from cascadec.errors import Diagnostic, caret_excerpt
from cascadec.limits import MAX_K, MAX_NUMBER_DIGITS, MAX_TIERS
from cascadec.registry import ModelRegistry

T_MIN, T_MAX = 0.0, 2.0


class TierTokens(NamedTuple):
    alias: Token
    k: Token
    t: Token


_TOKEN = {"model": 0, "k": 1, "temperature": 2}  # a finding's field -> its token in TierTokens


def marker_fix(f: Finding) -> str | None:
    """A finding's fix in marker syntax."""
    if f.code == "W101" and f.suggest:
        return f"write it as a majority vote: {vote_marker(*f.suggest)}"
    if f.code == "W103" and f.suggest:
        return f"write {tier_text(*f.suggest)}"
    if f.code == "E104":
        return "use k1 for greedy decoding, or sample with a temperature such as t0.7"
    if f.code == "E105" and f.matches:
        return f"did you mean {' or '.join(f.matches)}?"
    return None


class MarkerPlace(NamedTuple):
    """A marker inside its source: locates a finding at the token it is about."""

    body: str  # the marker without surrounding blanks
    source: str
    line: int
    offset: int  # body column c is column c + offset of the source line
    tiers: tuple[TierTokens, ...] = ()  # each tier's tokens (a plain marker: its one token, thrice)

    def diag(
        self, code: str, message: str, column: int, width: int = 1, fix: str | None = None
    ) -> Diagnostic:
        return Diagnostic(
            code=code,
            message=message,
            line=self.line,
            column=column + self.offset,
            source=self.source,
            excerpt=caret_excerpt(self.body, 1, column, width),
            fix=fix,
            end_column=column + self.offset + width,
        )

    def report(self, f: Finding) -> Diagnostic:
        """``f`` at its tier's token (at the marker's first character when about the whole strategy)."""
        column, width = 1, 1
        if f.tier is not None and f.tier < len(self.tiers):
            token = self.tiers[f.tier][_TOKEN[f.field or "model"]]
            column, width = token.column, len(token)
        return self.diag(f.code, f.message, column, width, fix=marker_fix(f))


def check_tiers(
    kind: Kind, tiers: list[TierTokens], reg: ModelRegistry, place: MarkerPlace, *, warnings: bool = True
) -> list[Diagnostic]:
    """Every error for the tiers of an mv / cascade marker, in source order; then, with ``warnings``, the warnings."""
    out: list[Diagnostic] = []
    if len(tiers) > MAX_TIERS:  # the spec's and the plan's bound: lint says what compile and serve will
        extra = tiers[MAX_TIERS].alias
        out.append(
            place.diag(
                "E100",
                f"a cascade has at most {MAX_TIERS} tiers; this one has {len(tiers)}",
                extra.column,
                len(extra),
                fix=f"keep {MAX_TIERS} tiers or fewer",
            )
        )
        return out
    costs: list[tuple[str, float]] = []
    for i, tier in enumerate(tiers):
        found, cost = _check_tier(i, tier, reg, place, warnings)
        out.extend(found)
        costs.append((str(tier.alias), cost))
    if not warnings or any(d.is_error for d in out):
        return out
    findings = tier_rules.cost_drops(costs)
    if len(tiers) == 1:
        t = tiers[0]
        single = tier_rules.single_tier_cascade(kind, [(str(t.alias), int(t.k), float(t.t) + 0.0)])
        findings = [single] if single else []
    return out + [place.report(f) for f in findings]


def _check_tier(
    i: int, tier: TierTokens, reg: ModelRegistry, place: MarkerPlace, warnings: bool
) -> tuple[list[Diagnostic], float]:
    out: list[Diagnostic] = []
    name = str(tier.alias)
    entry, unknown = tier_rules.resolve_model(i, name, reg)
    if unknown is not None:
        out.append(place.report(unknown))
    digits = str(tier.k).lstrip("+-0") or "0"
    if len(digits) > MAX_NUMBER_DIGITS or int(digits) > MAX_K:  # before int() of 5000 digits
        shown = f"a {len(digits)}-digit number" if len(digits) > MAX_NUMBER_DIGITS else digits
        message = f"k must be an integer in [1, {MAX_K}], got {shown}"
        out.append(place.diag("E102", message, tier.k.column, len(tier.k), fix=f"use at most k{MAX_K}"))
        return out, 0.0
    k = int(tier.k)
    if k < 1:
        message = f"k must be an integer >= 1, got {k}"
        out.append(place.diag("E102", message, tier.k.column, len(tier.k), fix="use k1 for a single sample"))
    if len(str(tier.t)) > MAX_NUMBER_DIGITS + 2:
        out.append(place.diag("E103", "temperature has too many digits", tier.t.column, len(tier.t)))
        return out, 0.0
    t = float(tier.t) + 0.0
    if not (T_MIN <= t <= T_MAX) or math.isnan(t):
        message = f"temperature must be in [0, 2], got {tier.t}"
        out.append(place.diag("E103", message, tier.t.column, len(tier.t)))
    if not out and entry is not None:
        found = (
            tier_rules.greedy_k(i, k, t)
            or (warnings and tier_rules.greedy_only(i, name, entry, k, t))
            or None
        )
        if found is not None:
            out.append(place.report(found))
    return out, entry.cost_per_token if entry is not None else 0.0
