"""The signal registry: every signal a condition may name, its type, range and how it moves with k.

One table. The condition checker (unknown names), the compiler's reachability proofs
(agreement moves in steps of 1/k, entropy is at most ln k) and the runtime's
``compute_signals`` all read it; a new signal is one row here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Step = Literal["1/k", "int", "exact", "real", "share"]  # share: any real in its range, but {0, 1} at k = 1


@dataclass(frozen=True)
class SignalInfo:
    """What a signal can be, so the compiler can tell a threshold that never fires."""

    description: str
    low: float
    high: float | None = None  # None: unbounded; "ln k" for entropy is computed in value_range
    step: Step = "real"  # how it moves with k: multiples of 1/k, integers, exactly k, any real


SIGNALS: dict[str, SignalInfo] = {
    "agreement": SignalInfo("largest answer cluster / k", 0.0, 1.0, "1/k"),
    "margin": SignalInfo("(largest - second cluster) / k", 0.0, 1.0, "1/k"),
    "no_answer": SignalInfo("share of samples without an answer", 0.0, 1.0, "1/k"),
    "entropy": SignalInfo("answer-cluster entropy in nats (max ln k)", 0.0, None, "real"),
    "mean_logprob": SignalInfo("mean token log-probability", -math.inf, 0.0, "real"),
    "token_entropy": SignalInfo("mean per-token entropy in nats", 0.0, None, "real"),
    "tokens": SignalInfo("generated tokens at this tier", 0.0, None, "int"),
    "k": SignalInfo("samples drawn at this tier", 1.0, None, "exact"),
    # confidence (DeepConf; cascadec.runtime.confidence): NaN without token records
    "weighted_agreement": SignalInfo("winner's share of the vote weight", 0.0, 1.0, "share"),
    "hybrid": SignalInfo("sqrt(agreement x weighted_agreement)", 0.0, 1.0, "share"),
    "confidence": SignalInfo("mean trace confidence (vote metric)", 0.0, None, "real"),
    "winner_conf": SignalInfo("mean trace confidence of the winner", 0.0, None, "real"),
    "token_conf": SignalInfo("mean token confidence", 0.0, None, "real"),
    "lowest_group_conf": SignalInfo("mean lowest-group confidence", 0.0, None, "real"),
    "bottom10_conf": SignalInfo("mean bottom-10% group confidence", 0.0, None, "real"),
    "tail_conf": SignalInfo("mean tail confidence", 0.0, None, "real"),
}


def value_range(name: str, k: int) -> tuple[float, float]:
    """The closed range signal ``name`` can take at a tier of ``k`` samples."""
    info = SIGNALS[name]
    if name == "entropy":
        return 0.0, math.log(k) if k > 1 else 0.0
    if info.step == "exact":
        return float(k), float(k)
    return info.low, math.inf if info.high is None else info.high
