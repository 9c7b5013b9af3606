"""Spec builders shared by the compiler pass and static check tests."""

from __future__ import annotations

from cascadec.compiler.context import Context, MarkerLocator
from cascadec.registry import load_registry
from cascadec.spec.model import Spec

REG = load_registry()
CTX = Context(REG, MarkerLocator())
SAMPLED = {"k": 4, "temperature": 0.7}
RETRY = {"when": "entropy > 1", "extra_k": 4}


def spec(strategy: dict, **top) -> Spec:
    return Spec.model_validate({"version": 1, "strategy": strategy, **top})


def cascade(*tiers: dict, **strategy) -> Spec:
    return spec({"cascade": list(tiers), **strategy})


def three(k0: int, **strategy) -> Spec:
    """1.5B (k0 samples) -> 7B (k4) -> 72B greedy: the original system's cascade."""
    return cascade(
        {"model": "1.5B", "k": k0, "temperature": 0.7},
        {"model": "7B", **SAMPLED},
        {"model": "72B"},
        **strategy,
    )


def codes(diags) -> list[str]:
    return [d.code for d in diags]
