"""The OpenAI completions wire format, read and written in one place.

Every path of the HTTP backend (batches, asyncio asks, streamed samples) and ``cascadec serve``
build their ``/completions`` arguments and read its choices here, so a sample is the same
whichever way it was asked for: the seed is ``request_seed(seed, first_sample + offset)``
(:mod:`cascadec.core.seeds`), greedy asks one sample (vLLM refuses ``n > 1`` at T = 0; the
backend copies it), logprobs are always asked for (their tokens are the only per-sample token
count) and a streamed choice's chunks are gathered into the choice a batch would have returned.
"""

from __future__ import annotations

from types import SimpleNamespace

from cascadec.core.seeds import request_seed
from cascadec.errors import BackendError
from cascadec.runtime.backends.base import GenerationRequest, Sample, top_logprobs_entropy
from cascadec.runtime.confidence import token_confidence

# Phrases vLLM uses when a prompt does not fit the model: answered as truncated empty samples,
# as the offline backend does, instead of failing the whole batch.
TOO_LONG = ("maximum context length", "max_model_len", "too long", "context length")


def completion_args(
    request: GenerationRequest, model_id: str, logprobs: int, *, offset: int = 0, stream: bool = False
) -> dict:
    """``/completions`` arguments of ``request``, or of its sample ``offset`` alone when streamed."""
    greedy = request.temperature <= 0
    return {
        "model": model_id,
        "prompt": request.prompt,
        "n": 1 if greedy or stream else request.n,
        "temperature": 0.0 if greedy else request.temperature,
        "top_p": 1.0 if greedy else request.top_p,
        "max_tokens": request.max_tokens,
        "seed": request_seed(request.seed, request.first_sample + offset),
        "logprobs": max(1, logprobs),
        **({"stream": True} if stream else {}),
    }


def choice_sample(choice, logprobs: int, url: str | None) -> Sample:
    """One completion choice (``text``, ``finish_reason``, ``logprobs``) as a sample."""
    finish = "stop" if choice.finish_reason == "stop" else "length"
    lp = choice.logprobs
    if lp is None or lp.tokens is None:
        raise BackendError(f"{url} returned no logprobs; cannot count tokens per sample")
    if not logprobs:
        return Sample(choice.text, len(lp.tokens), finish)
    chosen = tuple(float("nan") if v is None else float(v) for v in lp.token_logprobs or ())
    tops = lp.top_logprobs or [None] * len(lp.tokens)
    entropies = tuple(top_logprobs_entropy((t or {}).values()) for t in tops)
    confidences = tuple(token_confidence((t or {}).values(), logprobs) for t in tops)
    return Sample(choice.text, len(lp.tokens), finish, chosen, entropies, confidences)


def too_long(exc: Exception) -> bool:
    """Whether the server refused the prompt as longer than the model's context."""
    return any(phrase in str(exc).lower() for phrase in TOO_LONG)


class Chunks:
    """A streamed choice's chunks gathered into one choice, read as a batched one would be."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tokens: list[str] = []
        self.chosen: list[float] = []
        self.tops: list = []
        self.finish: str | None = None

    def add(self, choice) -> tuple[float, ...]:
        """Take one chunk's choice; returns its new tokens' logprobs."""
        self.text.append(choice.text or "")
        lp = choice.logprobs
        new: tuple[float, ...] = ()
        if lp is not None and lp.tokens:
            new = tuple(float("nan") if v is None else float(v) for v in lp.token_logprobs or ())
            self.tokens += lp.tokens
            self.chosen += new or [float("nan")] * len(lp.tokens)
            self.tops += lp.top_logprobs or [None] * len(lp.tokens)
        self.finish = choice.finish_reason or self.finish
        return new

    def choice(self) -> SimpleNamespace:
        logprobs = SimpleNamespace(tokens=self.tokens, token_logprobs=self.chosen, top_logprobs=self.tops)
        return SimpleNamespace(text="".join(self.text), finish_reason=self.finish, logprobs=logprobs)
