"""The streaming, cancellable side of the backend protocol.

A streaming backend takes requests as they come (:meth:`StreamingBackend.submit`), hands back
each sample as soon as it is finished (:meth:`StreamingBackend.poll`), and can stop a whole
request or one of its samples mid-generation (:meth:`StreamingBackend.abort`). An aborted
sample still arrives, with ``finish_reason="abort"`` and whatever it had generated; it never
votes. With ``stream_tokens`` a request also reports, while it runs, the chosen-token logprobs
and token confidences each sample adds (:class:`StreamEvent` with ``sample=None``) — what
online confidence filtering (DeepConf) watches to abort a weak trace early.

The executor and ``cascadec serve``'s in-process engines talk to every backend through this
protocol. A backend that declares ``capabilities.stream`` implements it natively (vLLM offline:
the worker drives the engine's add/step/abort loop; replay; the OpenAI client and Ray, which
stream only when asked, ``stream_by_default=False``); any other gets it from
:class:`BatchStream`, which runs everything submitted as one ``generate`` at the next poll —
streaming in form, a batch in fact, and the same samples either way (:func:`as_stream` picks).
Batch collection over it is written once: :class:`Collector` gathers each request's finished
samples until all ``n`` are in (the executor's and the server's bookkeeping), :func:`collect`
is a whole batch through a stream.

Seeds do not change with the schedule: sample ``first_sample + i`` of a request is drawn with
:func:`cascadec.core.seeds.request_seed` ``(seed, first_sample + i)`` whether it is asked alone
(``n=1``, as vLLM streams it, so one sample can be aborted) or within an ``n``-sample request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar, runtime_checkable

from cascadec.errors import BackendError
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Backend, Capabilities, GenerationRequest, Sample

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
    capabilities: Capabilities

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

    capabilities = Capabilities(stream=True)

    def __init__(self, backend: Backend):
        self.backend = backend
        self.name = backend.name
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
    can stream does, even one that batches by default (the OpenAI client, Ray).
    """
    caps = backend.capabilities
    if caps.stream and (tokens or caps.stream_by_default):
        return backend  # type: ignore[return-value]
    return BatchStream(backend)  # type: ignore[arg-type]


# --- batch collection over the stream, once ------------------------------------------------------
T = TypeVar("T")


class Collector(Generic[T]):
    """Each request in flight and what arrived of it: a request is complete when all of its ``n``
    samples are in. What is kept per sample is the caller's (the sample, or its record)."""

    def __init__(self, name: str):
        self.name = name  # the backend's, for errors
        self._n: dict[str, int] = {}
        self._got: dict[str, dict[int, T]] = {}

    def __len__(self) -> int:
        return len(self._n)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._n

    def expect(self, request: GenerationRequest) -> None:
        if request.request_id in self._n:
            raise ValueError(f"request {request.request_id!r} is already in flight")
        self._n[request.request_id] = request.n
        self._got[request.request_id] = {}

    def check(self, event: StreamEvent, where: str = "") -> None:
        """A sample (or its tokens) of a request in flight, not one already finished."""
        got = self._got.get(event.request_id)
        if got is None or not 0 <= event.index < self._n[event.request_id] or event.index in got:
            raise BackendError(
                f"backend {self.name} sent a sample nobody asked for: {event.request_id} #{event.index}{where}"
            )

    def add(self, request_id: str, index: int, item: T) -> list[T] | None:
        """Keep finished sample ``index``; the request's items in index order once it is complete
        (the request is then no longer in flight)."""
        got = self._got[request_id]
        got[index] = item
        if len(got) < self._n[request_id]:
            return None
        self.drop(request_id)
        return [got[i] for i in range(len(got))]

    def drop(self, request_id: str) -> None:
        """Forget a request (complete, or abandoned: late samples of it are then refused)."""
        self._n.pop(request_id, None)
        self._got.pop(request_id, None)


def collect(
    stream: StreamingBackend,
    requests: Sequence[GenerationRequest],
    *,
    stream_tokens: bool = False,
    on_tokens: Callable[[StreamEvent], None] | None = None,
    timeout: float | None = 0.5,
) -> list[list[Sample]]:
    """A whole batch through the stream: submit ``requests``, poll until every sample is in;
    exactly ``n`` samples per request, in request order (``on_tokens`` sees token events)."""
    collector: Collector[Sample] = Collector(stream.name)
    for req in requests:
        collector.expect(req)
    done: dict[str, list[Sample]] = {}
    if requests:
        stream.submit(requests, stream_tokens=stream_tokens)
    while collector:
        for ev in stream.poll(timeout):
            collector.check(ev)
            if ev.sample is None:
                if on_tokens is not None:
                    on_tokens(ev)
                continue
            complete = collector.add(ev.request_id, ev.index, ev.sample)
            if complete is not None:
                done[ev.request_id] = complete
    return [done[r.request_id] for r in requests]
