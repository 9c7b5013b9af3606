"""The streaming, cancellable side of the backend protocol.

A streaming backend takes requests as they come (:meth:`StreamingBackend.submit`), hands back
each sample as soon as it is finished (:meth:`StreamingBackend.poll`), and can stop a whole
request or one of its samples mid-generation (:meth:`StreamingBackend.abort`). An aborted
sample still arrives, with ``finish_reason="abort"`` and whatever it had generated; it never
votes. With ``stream_tokens`` a request also reports, while it runs, the chosen-token logprobs
and token confidences each sample adds (:class:`StreamEvent` with ``sample=None``) — what
online confidence filtering (DeepConf) watches to abort a weak trace early.

The executor talks to every backend through this protocol. vLLM offline implements it
natively (the worker drives the engine's add/step/abort loop); a backend that only answers
whole batches (Ray, the OpenAI client, replay) gets it from :class:`BatchStream`, which runs
everything submitted as one ``generate`` at the next poll — streaming in form, a batch in fact,
and the same samples either way.

Seeds do not change with the schedule: sample ``first_sample + i`` of a request is drawn with
:func:`cascadec.core.seeds.request_seed` ``(seed, first_sample + i)`` whether it is asked alone
(``n=1``, as vLLM streams it, so one sample can be aborted) or within an ``n``-sample request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Backend, GenerationRequest, Sample

ABORT = "abort"


@dataclass(frozen=True)
class StreamEvent:
    """Sample ``index`` (0 .. n-1 within its request) finished, or produced more tokens."""

    request_id: str
    index: int
    sample: Sample | None = None  # set when the sample is finished (or aborted)
    logprobs: tuple[float, ...] = ()  # new chosen-token logprobs (``stream_tokens`` only)
    confidences: tuple[float, ...] = ()  # their token confidences, -mean top-L logprob (DeepConf)

    @property
    def finished(self) -> bool:
        return self.sample is not None


@runtime_checkable
class StreamingBackend(Protocol):
    name: str

    def load(self, model: PlanModel) -> None:
        """Make ``model`` the current one (free the previous one); nothing may be in flight."""

    def submit(self, requests: Sequence[GenerationRequest], stream_tokens: bool = False) -> None:
        """Start generating ``requests`` (ids unique among those in flight)."""

    def poll(self, timeout: float | None = None) -> list[StreamEvent]:
        """Events since the last poll; waits up to ``timeout`` (None: until there is one) while
        requests are in flight, returns ``[]`` at once when none is."""

    def abort(self, request_id: str, index: int | None = None) -> None:
        """Stop one sample of a request (or every unfinished one): it arrives as ``abort``."""

    def close(self) -> None:
        """Free everything; the backend may be loaded again afterwards."""


def aborted(partial: Sample | None = None) -> Sample:
    """The sample an abort leaves: what was generated so far, marked ``abort``."""
    if partial is None:
        return Sample(text="", num_tokens=0, finish_reason=ABORT)
    return replace(partial, finish_reason=ABORT)


class BatchStream:
    """The streaming protocol over a batch backend: what is submitted runs at the next poll.

    Aborts of samples not yet generated turn them into empty aborted samples (the batch backend
    is never asked for them); once generated a sample cannot be aborted any more.
    """

    def __init__(self, backend: Backend):
        self.backend = backend
        self.name = getattr(backend, "name", "?")
        self._queued: list[GenerationRequest] = []
        self._aborted: dict[str, set[int] | None] = {}  # request id -> indices (None: all)

    def load(self, model: PlanModel) -> None:
        self.backend.load(model)

    def submit(self, requests: Sequence[GenerationRequest], stream_tokens: bool = False) -> None:
        self._queued.extend(requests)

    def abort(self, request_id: str, index: int | None = None) -> None:
        if not any(r.request_id == request_id for r in self._queued):
            return  # already generated (or unknown): nothing left to stop
        have = self._aborted.get(request_id, set())
        self._aborted[request_id] = None if index is None or have is None else have | {index}

    def poll(self, timeout: float | None = None) -> list[StreamEvent]:
        queued, self._queued = self._queued, []
        aborted, self._aborted = self._aborted, {}
        run = [r for r in queued if r.request_id not in aborted]
        events = [
            StreamEvent(r.request_id, i, aborted_sample)
            for r in queued
            if r.request_id in aborted
            for i, aborted_sample in _split_aborts(r, aborted[r.request_id])
        ]
        partial = [r for r in queued if r.request_id in aborted and aborted[r.request_id] is not None]
        outputs = self.backend.generate(run + partial) if run or partial else []
        for req, samples in zip(run + partial, outputs, strict=True):
            skip = aborted.get(req.request_id) or set()
            events.extend(StreamEvent(req.request_id, i, s) for i, s in enumerate(samples) if i not in skip)
        return events

    def close(self) -> None:
        self._queued, self._aborted = [], {}
        self.backend.close()


def _split_aborts(req: GenerationRequest, indices: set[int] | None) -> list[tuple[int, Sample]]:
    """The aborted samples of a queued request (all of them when ``indices`` is None)."""
    chosen = range(req.n) if indices is None else sorted(i for i in indices if 0 <= i < req.n)
    return [(i, aborted()) for i in chosen]


def as_stream(backend: Backend | StreamingBackend, tokens: bool = False) -> StreamingBackend:
    """``backend`` itself when it streams, else a :class:`BatchStream` around it.

    ``tokens``: the run watches tokens as they come (online termination), so a backend that
    can stream does, even one that batches by default (the OpenAI client).
    """
    native = all(callable(getattr(backend, m, None)) for m in ("submit", "poll", "abort"))
    if native and (tokens or getattr(backend, "streams", True)):  # may stream only when asked to
        return backend  # type: ignore[return-value]
    return BatchStream(backend)  # type: ignore[arg-type]
