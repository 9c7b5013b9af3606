"""What a strategy gets when its spec is silent: the one statement of every compiler default.

The passes fill a Draft with these, and :mod:`cascadec.compiler.marker_of` asks whether a
compiled strategy is exactly what a marker's spec (tiers and nothing else, see
``spec.from_marker``) compiles to by comparing each plan field with the same functions, so
the two can never drift apart. The spec-level numbers (``DEFAULT_*``, ``target_conf``) live
in :mod:`cascadec.spec.model`; this module turns them into plan values.
"""

from __future__ import annotations

import math

from cascadec.core.answer_format import AnswerFormat, default_answer_format
from cascadec.core.conditions import parse_condition
from cascadec.core.kinds import CASCADES
from cascadec.core.policies import ExploreAction
from cascadec.core.printer import format_number
from cascadec.plan import Exploration
from cascadec.registry import ModelEntry, ModelRegistry
from cascadec.spec.model import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PROMPT,
    DEFAULT_SEED,
    DEFAULT_TARGET_CONF,
    DEFAULT_TARGET_ENTROPY,
    DEFAULT_TOP_P_GREEDY,
    DEFAULT_TOP_P_SAMPLED,
)

__all__ = [
    "DEFAULT_SEED",
    "default_answer",
    "default_escalate_if",
    "default_explore",
    "default_max_tokens",
    "default_prompt",
    "default_top_p",
    "max_entropy_condition",
]


def default_top_p(temperature: float, asked: float | None = None) -> float:
    """Greedy tiers sample with top_p 1 whatever was asked; sampled tiers take what was asked, else 0.8."""
    if temperature == 0:
        return DEFAULT_TOP_P_GREEDY
    return asked or DEFAULT_TOP_P_SAMPLED


def default_max_tokens(entry: ModelEntry | None) -> int:
    """2048, capped by the model's max_model_len."""
    cap = entry.max_model_len if entry is not None else None
    return DEFAULT_MAX_TOKENS if cap is None else min(DEFAULT_MAX_TOKENS, cap)


def default_escalate_if(
    kind: str,
    target_conf: float = DEFAULT_TARGET_CONF,
    target_entropy: float = DEFAULT_TARGET_ENTROPY,
) -> str:
    """A cascade tier escalates on low agreement; an entropy cascade's on high entropy or no answer."""
    if kind == "entropy_cascade":
        return f"entropy > {format_number(target_entropy)} or no_answer > 0.5"
    return f"agreement < {format_number(target_conf)}"


def max_entropy_condition(k: int) -> str:
    """True only when all k samples give different answers: entropy = ln k (rounded down, 6 places)."""
    return f"entropy >= {format_number(math.floor(math.log(k) * 1e6) / 1e6)}"


def default_explore(kind: str, index: int, n_tiers: int, k: int) -> Exploration | None:
    """An entropy cascade skips to the top tier when all k >= 3 answers differ (not from its last two tiers)."""
    if kind == "entropy_cascade" and index < n_tiers - 2 and k >= 3:
        return Exploration(when=max_entropy_condition(k), action=ExploreAction.SKIP_TO_TOP)
    return None


def default_prompt(first: ModelEntry | None, registry: ModelRegistry) -> str:
    """The first tier's model's prompt, else the registry's, else qwen-math-cot."""
    return (first.prompt if first else None) or registry.prompt or DEFAULT_PROMPT


def default_answer(prompt: str) -> AnswerFormat:
    """How the prompt asks for the answer decides how it is read."""
    return default_answer_format(prompt)


def canonical_default_escalate_if(kind: str, index: int, n_tiers: int) -> str | None:
    """A marker tier's escalate_if in canonical text: the kind's default, None on the last tier or a vote."""
    if kind not in CASCADES or index >= n_tiers - 1:
        return None
    return str(parse_condition(default_escalate_if(kind)))
