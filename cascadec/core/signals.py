"""The signal registry: every signal a condition may name, its type, range and how it moves with k.

One table. The condition checker (unknown names), the compiler's reachability proofs
(agreement moves in steps of 1/k, entropy is at most ln k) and its messages, the run records
(one field per signal), the runtime's ``compute_signals``, the vectorised simulator (which
signals it measures over arrays, which a tier-local sweep may use) and the report (how a
signal reads as a confidence: reliability diagrams) all read it, through the views below
(:data:`SIMULATED_SIGNALS`, :data:`TIER_SIGNALS`, :data:`LADDER_SIGNALS`,
:data:`CONFIDENCE_SCALES`, :func:`signals_with`), which always reflect the table.

Adding a signal is its row here and its computation in :mod:`cascadec.runtime.signals` (one
entry of ``COMPUTATIONS``, a function of the tier's vote and samples); nothing else. A row with
``simulated=False`` is simulated exactly (the simulator runs such strategies through the
runtime on the bank); to simulate it on the arrays too, add its array computation in
:mod:`cascadec.sim.tally` and set ``simulated=True``. Worked example: README, "Adding a signal";
``tests/unit/test_signal_registry.py`` adds a toy signal this way and finds it in conditions,
simulations, run records and reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Step = Literal["1/k", "int", "exact", "real", "share"]  # share: any real in its range, but {0, 1} at k = 1


class Scale(StrEnum):
    """How a signal reads as a confidence (reports: reliability diagrams)."""

    PROBABILITY = "probability"  # already in [0, 1]: calibrated means accuracy = value
    EXP = "exp"  # a mean log-probability: exp() is the geometric-mean token probability
    HIGHER = "higher"  # unbounded, higher = more confident: accuracy by quantile bin, no ECE
    LOWER = "lower"  # unbounded, lower = more confident (entropies)


class Scope(StrEnum):
    """What a signal reads: the tier's own samples, the tiers that ran before it too, or the
    problem alone (known before any sample: a learned route's prediction)."""

    TIER = "tier"
    LADDER = "ladder"
    PROBLEM = "problem"


@dataclass(frozen=True)
class SignalInfo:
    """What a signal can be, so the compiler can tell a threshold that never fires."""

    description: str
    low: float
    high: float | None = None  # None: unbounded; "ln k" for entropy is computed in value_range
    step: Step = "real"  # how it moves with k: multiples of 1/k, integers, exactly k, any real
    scale: Scale | None = None  # how it reads as a confidence (None: not a confidence)
    simulated: bool = True  # the vectorised simulator measures it (else: the runtime's exact path)
    scope: Scope = Scope.TIER


_P, _H, _L = Scale.PROBABILITY, Scale.HIGHER, Scale.LOWER

SIGNALS: dict[str, SignalInfo] = {
    "agreement": SignalInfo("largest answer cluster / k", 0.0, 1.0, "1/k", _P),
    "margin": SignalInfo("(largest - second cluster) / k", 0.0, 1.0, "1/k", _P),
    "no_answer": SignalInfo("share of samples without an answer", 0.0, 1.0, "1/k"),
    "entropy": SignalInfo("answer-cluster entropy in nats (max ln k)", 0.0, None, "real", _L),
    "mean_logprob": SignalInfo("mean token log-probability", -math.inf, 0.0, "real", Scale.EXP),
    "token_entropy": SignalInfo("mean per-token entropy in nats", 0.0, None, "real", _L),
    "tokens": SignalInfo("generated tokens at this tier", 0.0, None, "int"),
    "k": SignalInfo("samples drawn at this tier", 1.0, None, "exact"),
    # confidence (DeepConf; cascadec.runtime.confidence): NaN without token records
    "weighted_agreement": SignalInfo("winner's share of the vote weight", 0.0, 1.0, "share", _P, False),
    "hybrid": SignalInfo("sqrt(agreement x weighted_agreement)", 0.0, 1.0, "share", _P, False),
    "confidence": SignalInfo("mean trace confidence (vote metric)", 0.0, None, "real", _H, False),
    "winner_conf": SignalInfo("mean trace confidence of the winner", 0.0, None, "real", _H, False),
    "token_conf": SignalInfo("mean token confidence", 0.0, None, "real", _H, False),
    "lowest_group_conf": SignalInfo("mean lowest-group confidence", 0.0, None, "real", _H, False),
    "bottom10_conf": SignalInfo("mean bottom-10% group confidence", 0.0, None, "real", _H, False),
    "tail_conf": SignalInfo("mean tail confidence", 0.0, None, "real", _H, False),
    # external scores (reward model, verifier, judge): the bank's ``score`` column; NaN without one
    "score_mean": SignalInfo("mean external score of the tier's samples", -math.inf, None, "real", _H),
    "score_max": SignalInfo("highest external score of the tier's samples", -math.inf, None, "real", _H),
    "winner_score": SignalInfo("mean external score of the winner's samples", -math.inf, None, "real", _H),
    # a second opinion (FrugalGPT / AutoMix / MoT): NaN at the first tier that runs
    "agrees_prev": SignalInfo(
        "1 when this tier's answer equals the previous tier's, else 0",
        0.0,
        1.0,
        "real",
        _P,
        scope=Scope.LADDER,
    ),
    # learned routing (cascadec.router): the route's estimate of P(right) for this tier's model,
    # from the problem text alone; NaN without a route. Per problem and tier, known before sampling
    "router_p": SignalInfo(
        "the router's P(right) for this tier (from the problem)", 0.0, 1.0, "real", _P, scope=Scope.PROBLEM
    ),
}


def value_range(name: str, k: int) -> tuple[float, float]:
    """The closed range signal ``name`` can take at a tier of ``k`` samples."""
    info = SIGNALS[name]
    if name == "entropy":
        return 0.0, math.log(k) if k > 1 else 0.0
    if info.step == "exact":
        return float(k), float(k)
    return info.low, math.inf if info.high is None else info.high


class _Names(AbstractSet[str]):
    """The names of the signals whose row satisfies a predicate: a live view of :data:`SIGNALS`
    (a row added later is in it), usable as a set (``<=``, ``&``, ``-``, ``in``)."""

    def __init__(self, keep: Callable[[SignalInfo], bool]):
        self._keep = keep

    def __contains__(self, name: object) -> bool:
        info = SIGNALS.get(name) if isinstance(name, str) else None
        return info is not None and self._keep(info)

    def __iter__(self) -> Iterator[str]:
        return (name for name, info in list(SIGNALS.items()) if self._keep(info))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _from_iterable(cls, it):
        return frozenset(it)

    def __repr__(self) -> str:
        return f"{{{', '.join(self)}}}"


class _Scales(Mapping[str, Scale]):
    """Signal name -> how it reads as a confidence, for the signals that are one (a live view)."""

    def __getitem__(self, name: str) -> Scale:
        scale = SIGNALS[name].scale
        if scale is None:
            raise KeyError(name)
        return scale

    def __iter__(self) -> Iterator[str]:
        return (name for name, info in list(SIGNALS.items()) if info.scale is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def signals_with(keep: Callable[[SignalInfo], bool]) -> AbstractSet[str]:
    """The signals whose row satisfies ``keep`` (a live view of :data:`SIGNALS`)."""
    return _Names(keep)


# measured on the arrays by the vectorised simulator (the others: the runtime's exact path)
SIMULATED_SIGNALS = signals_with(lambda info: info.simulated)
# a function of the tier's own samples (a tier-local sweep may evaluate them once per tier)
TIER_SIGNALS = signals_with(lambda info: info.scope is Scope.TIER)
# read the tiers that ran before (a tier's answers matter even when it always escalates)
LADDER_SIGNALS = signals_with(lambda info: info.scope is Scope.LADDER)
CONFIDENCE_SCALES: Mapping[str, Scale] = _Scales()
