"""Semantic checks over a marker's tier tokens: ranges, registry, cascade shape.

Kept apart from the grammar so each rule is a few lines with a stable code (see errors.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from lark import Token

from cascadec.core.kinds import Kind
from cascadec.core.printer import format_temperature, vote_marker
from cascadec.errors import Diagnostic
from cascadec.limits import MAX_K, MAX_NUMBER_DIGITS
from cascadec.registry import ModelRegistry

T_MIN, T_MAX = 0.0, 2.0
DiagFn = Callable[..., Diagnostic]


class TierTokens(NamedTuple):
    alias: Token
    k: Token
    t: Token


def check_tiers(kind: Kind, tiers: list[TierTokens], reg: ModelRegistry, diag: DiagFn) -> list[Diagnostic]:
    """Every finding for the tiers of an mv / cascade marker, in source order."""
    out: list[Diagnostic] = []
    for tier in tiers:
        out.extend(_check_tier(tier, reg, diag))
    if any(d.is_error for d in out):
        return out
    if Kind(kind).escalates and len(tiers) == 1:
        t = tiers[0]
        out.append(
            diag(
                "W101",
                "cascade with a single tier never escalates",
                1,
                fix=f"write it as a majority vote: {vote_marker(str(t.alias), int(t.k), float(t.t))}",
            )
        )
    for before, after in zip(tiers, tiers[1:], strict=False):
        cost_before = reg.resolve(str(before.alias)).params
        cost_after = reg.resolve(str(after.alias)).params
        if cost_after < cost_before:
            out.append(
                diag(
                    "W102",
                    f"tier {after.alias} is cheaper than the tier before it ({before.alias}): cascades should grow in cost",
                    after.alias.column,
                    len(after.alias),
                )
            )
    return out


def _check_tier(tier: TierTokens, reg: ModelRegistry, diag: DiagFn) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    alias = str(tier.alias)
    entry = reg.get(alias)
    if entry is None:
        hint = reg.close_matches(alias)
        message = f"unknown model size {alias!r}" + ("" if hint else f"; known: {', '.join(reg.aliases())}")
        out.append(
            diag(
                "E105",
                message,
                tier.alias.column,
                len(alias),
                fix=f"did you mean {' or '.join(hint)}?" if hint else None,
            )
        )
    digits = str(tier.k).lstrip("+-0") or "0"
    if len(digits) > MAX_NUMBER_DIGITS or int(digits) > MAX_K:  # before int() of 5000 digits
        shown = f"a {len(digits)}-digit number" if len(digits) > MAX_NUMBER_DIGITS else digits
        out.append(
            diag(
                "E102",
                f"k must be an integer in [1, {MAX_K}], got {shown}",
                tier.k.column,
                len(tier.k),
                fix=f"use at most k{MAX_K}",
            )
        )
        return out
    k = int(tier.k)
    if k < 1:
        out.append(
            diag(
                "E102",
                f"k must be an integer >= 1, got {k}",
                tier.k.column,
                len(tier.k),
                fix="use k1 for a single sample",
            )
        )
    if len(str(tier.t)) > MAX_NUMBER_DIGITS + 2:
        out.append(diag("E103", "temperature has too many digits", tier.t.column, len(tier.t)))
        return out
    t = float(tier.t) + 0.0
    if not (T_MIN <= t <= T_MAX) or math.isnan(t):
        out.append(diag("E103", f"temperature must be in [0, 2], got {tier.t}", tier.t.column, len(tier.t)))
    if not out and k > 1 and t == 0.0:
        out.append(
            diag(
                "E104",
                f"k{k} at temperature 0: all {k} greedy samples would be identical",
                tier.k.column,
                len(tier.k),
                fix="use k1 for greedy decoding, or sample with a temperature such as t0.7",
            )
        )
    if not out and entry is not None and entry.greedy_only and (k > 1 or t > 0):
        out.append(
            diag(
                "W103",
                f"{alias} is greedy-only (memory safety): k{k}_t{format_temperature(t)} runs as k1_t0.0",
                tier.k.column if k > 1 else tier.t.column,
                len(tier.k) if k > 1 else len(tier.t),
                fix=f"write {alias}_k1_t0.0",
            )
        )
    return out
