"""The rules over a strategy's tiers, stated once for both front-ends.

A marker (``mv_cascade_7B_k4_t0.7_...``) and a YAML spec say the same things in two
syntaxes, so each rule here is one function over plain values (model name, k, temperature,
registry entry) that returns a :class:`Finding`: the code, the message, which tier and which
field it is about, and what to write instead (``suggest``). The marker front-end
(:mod:`cascadec.marker.checks`) and the compiler passes only add their own location (a
token, a YAML node) and spell ``suggest`` in their own syntax.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from cascadec.core.kinds import Kind
from cascadec.core.printer import format_temperature
from cascadec.registry import ModelEntry, ModelRegistry

Field = str  # "model", "k" or "temperature": which part of a tier a finding points at


class Finding(NamedTuple):
    """One rule's verdict; front-ends turn it into a located ``Diagnostic``."""

    code: str
    message: str
    tier: int | None = None  # None: the strategy as a whole
    field: Field | None = None
    suggest: tuple[str, int, float] | None = None  # (model, k, temperature) to write instead
    matches: tuple[str, ...] = ()  # close matches of an unknown model


def guess_params(model_id: str) -> float:
    """Cost of a model the registry does not know, read off its name (``...-7B-...`` → 7e9), else 1e9."""
    m = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)([MB])(?![a-zA-Z])", model_id.split("/")[-1], re.IGNORECASE)
    value = float(m.group(1)) * (1e6 if m.group(2).upper() == "M" else 1e9) if m else 0.0
    return value if value > 0 else 1e9  # "0B" says nothing either (a cost must be > 0)


def resolve_model(tier: int, name: str, registry: ModelRegistry) -> tuple[ModelEntry | None, Finding | None]:
    """A tier's model: the registry's entry; a full id it lacks runs as given (W104); else E105."""
    entry = registry.get(name)
    if entry is not None:
        return entry, None
    if "/" in name:
        entry = ModelEntry(id=name, params=guess_params(name))
        message = (
            f"model {name!r} is not in the model registry; it runs as given, "
            f"cost guessed as {entry.params:g} params"
        )
        return entry, Finding("W104", message, tier, "model")
    shipped = shipped_registries_knowing(name)
    if shipped:  # a model of another shipped registry (0.034M without --models zoo): say which
        where = " or ".join(f"--models {r}" for r in shipped)
        message = (
            f"unknown model {name!r} in this registry; it is a model of the shipped registry "
            f"{' and '.join(shipped)}: did you mean {where}? (in a spec: models: {shipped[0]})"
        )
        return None, Finding("E105", message, tier, "model")
    matches = tuple(registry.close_matches(name))
    known = "" if matches else f"; known: {', '.join(registry.aliases())}"
    return None, Finding("E105", f"unknown model {name!r}{known}", tier, "model", matches=matches)


@functools.cache
def _shipped_registries() -> tuple[tuple[str, ModelRegistry], ...]:
    from cascadec.registry import load_registry, named_registry

    out = []
    for path in sorted(named_registry("zoo").parent.glob("*.yaml")):
        try:
            out.append((path.stem, load_registry(path)))
        except Exception:  # noqa: BLE001 - a hint must never fail a lint
            continue
    return tuple(out)


def shipped_registries_knowing(name: str) -> list[str]:
    """The shipped registries (``zoo``, ...) with a model whose id or alias is ``name``."""
    try:
        return [stem for stem, reg in _shipped_registries() if reg.get(name) is not None]
    except OSError:
        return []


def greedy_k(tier: int, k: int, temperature: float) -> Finding | None:
    """T = 0 implies k = 1: greedy samples are identical (E104)."""
    if temperature == 0 and k > 1:
        message = f"k{k} at temperature 0: all {k} greedy samples would be identical"
        return Finding("E104", message, tier, "k")
    return None


def greedy_only(tier: int, name: str, entry: ModelEntry, k: int, temperature: float) -> Finding | None:
    """A greedy-only model (the 72B) runs k1_t0.0 whatever was asked, and says so (W103)."""
    if not entry.greedy_only or (k <= 1 and temperature <= 0):
        return None
    asked = f"k{k}_t{format_temperature(temperature)}"
    message = f"{name} is greedy-only (memory safety): {asked} runs as k1_t0.0"
    return Finding("W103", message, tier, "k" if k > 1 else "temperature", suggest=(name, 1, 0.0))


def single_tier_cascade(kind: Kind | str, tiers: list[tuple[str, int, float]]) -> Finding | None:
    """A cascade of one tier never escalates: it is a majority vote (W101)."""
    if not Kind(kind).escalates or len(tiers) != 1:
        return None
    return Finding("W101", "cascade with a single tier never escalates", suggest=tiers[0])


def cost_drops(tiers: list[tuple[str, float]]) -> list[Finding]:
    """Each tier should cost at least as much per token as the one before (W102), over (name, cost)."""
    out = []
    for i in range(1, len(tiers)):  # a plain loop: lint runs this for every distinct marker
        (before, cost_before), (after, cost_after) = tiers[i - 1], tiers[i]
        if cost_after < cost_before:
            message = (
                f"tier {after} is cheaper than the tier before it ({before}): cascades should grow in cost"
            )
            out.append(Finding("W102", message, i, "model"))
    return out
