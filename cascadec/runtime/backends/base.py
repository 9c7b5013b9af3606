"""The backend protocol: the only thing the executor knows about inference engines.

A backend loads one model at a time and answers batches of requests, each asking for ``n``
samples of one prompt (so an engine can share the prompt prefix). vLLM offline, an
OpenAI-compatible server, Ray actors and replay from a sample bank all fit behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cascadec.plan import PlanModel


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str  # stable: "<problem id>|<strategy key>|<tier index>|<round>"
    problem_id: str  # lets replay find recorded samples
    prompt: str
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None  # base seed, sample 0's (core.seeds); the engine gets request_seed(seed, first_sample)
    first_sample: int = 0  # index of the first sample asked for (rounds, retries continue numbering)


@dataclass(frozen=True)
class Sample:
    text: str
    num_tokens: int
    finish_reason: str  # "stop" | "length" (truncated: never votes)
    logprobs: tuple[float, ...] | None = None  # chosen-token logprobs
    entropies: tuple[float, ...] | None = None  # per-token entropy over the returned top logprobs
    confidences: tuple[float, ...] | None = None  # per-token -mean of the top-L logprobs (DeepConf)
    score: float | None = None  # an external score of the sample (reward model, verifier, judge)
    cost: float | None = None  # the sample's recorded cost; None: num_tokens x the model's cost per token


ProgressFn = Callable[[int], None]


@runtime_checkable
class Backend(Protocol):
    name: str

    def load(self, model: PlanModel) -> None:
        """Make ``model`` the current one (free the previous one)."""

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[list[Sample]]:
        """One list of exactly ``request.n`` samples per request, in request order."""

    def close(self) -> None:
        """Free everything; the backend may be loaded again afterwards."""


def top_logprobs_entropy(logprobs: Iterable[float | None]) -> float:
    """Entropy (nats) of one position's top-L logprobs, renormalised to sum to one.

    Engines return only the top L of the distribution; every backend computes
    ``token_entropy`` this same way so their signals agree.
    """
    values = [v for v in logprobs if v is not None and math.isfinite(v)]
    if not values:
        return 0.0
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    total = sum(weights)
    return max(0.0, -sum(w / total * math.log(w / total) for w in weights if w > 0))
