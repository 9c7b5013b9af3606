"""The backend protocol: the only thing the executor and the server know about inference engines.

A backend loads one model at a time and answers requests, each asking for ``n`` samples of one
prompt (so an engine can share the prompt prefix). vLLM offline, an OpenAI-compatible server,
Ray actors and replay from a sample bank all fit behind it.

Every backend answers whole batches (``generate``) and declares what more it can do in its
:class:`Capabilities` — nobody probes it for methods: ``stream`` (the streaming, cancellable
protocol of :mod:`cascadec.runtime.backends.streaming`: ``submit``, ``poll``, ``abort``; the
executor and ``cascadec serve`` drive every backend through it, a batch-only one wrapped) and
``endpoint`` (an HTTP endpoint that batches continuously by itself: the server sends it each ask
at once on the event loop, ``acomplete`` / ``astream`` / ``aclose``, :class:`EndpointBackend`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
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


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond answering whole batches (declared, never discovered)."""

    stream: bool = False  # submit / poll / abort natively (streaming.StreamingBackend)
    # drive it through its stream even when nobody watches tokens (False: only when a run does,
    # online termination; whole batches otherwise — Ray, the OpenAI client without stream=True)
    stream_by_default: bool = True
    endpoint: bool = False  # an endpoint that batches by itself: acomplete / astream / aclose


BATCH_ONLY = Capabilities()


@runtime_checkable
class Backend(Protocol):
    name: str
    capabilities: Capabilities

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


@runtime_checkable
class EndpointBackend(Backend, Protocol):
    """An endpoint that batches continuously by itself (``vllm serve``): ``capabilities.endpoint``.
    The server sends it each ask the moment it exists, on the event loop."""

    async def acomplete(self, request: GenerationRequest) -> list[Sample]:
        """:meth:`generate` for one request."""

    async def astream(self, request: GenerationRequest, on_delta: Callable[[str], Awaitable[None]]) -> Sample:
        """One sample (``n`` must be 1), its text awaited through ``on_delta`` as the engine makes it."""

    async def aclose(self) -> None:
        """Close what lives on the event loop (then ``close`` frees the rest)."""
