"""One engine per model: an HTTP endpoint fed ask by ask, an in-process engine fed its stream.

Concurrent HTTP requests each drive their own cascade, so asks for the same model arrive one
by one. How they reach the model depends on what the backend declares
(:class:`cascadec.runtime.backends.base.Capabilities`):

- ``vllm serve`` batches continuously itself (``capabilities.endpoint``). Its engine sends each
  ask the moment it exists (``OpenAIBackend.acomplete``: the request ``cascadec run`` sends, on
  the event loop), up to ``max_batch`` in flight: no barrier, so a slow ask never holds the
  others back. The batch a response reports is how many asks were in flight at that endpoint
  with it.
- An in-process backend (``VLLMBackend`` workers from ``--engines local``, replay) is fed the
  same streaming protocol ``cascadec run``'s executor feeds it
  (:mod:`cascadec.runtime.backends.streaming`: ``submit``, ``poll``, ``abort``; a batch-only
  backend through ``BatchStream``), from one thread that owns it: asks that arrive within
  ``batch_window_ms`` go in together, later ones join while the others still generate, each
  ask's samples are gathered (``Collector``) until all ``n`` are in. An ask whose client went
  away (a disconnect, a timeout) is aborted on the engine: its samples stop mid-generation
  (``BatchStats.aborted`` counts them), as a closed HTTP stream stops them at an endpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from cascadec.errors import CascadecError
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Backend, EndpointBackend, GenerationRequest, Sample
from cascadec.runtime.backends.streaming import ABORT, Collector, StreamEvent, as_stream

log = logging.getLogger("cascadec.serve")

Delta = Callable[[str], Awaitable[None]]
POLL_S = 0.05  # longest wait for an engine event before new asks and aborts go in


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)  # the last few batch sizes (for /health)
    aborted: int = 0  # samples stopped because their client went away


class Engine:
    """A loaded backend for one model: asks sent directly (an endpoint) or fed to its stream."""

    def __init__(
        self,
        model: PlanModel,
        backend: Backend,
        *,
        window_s: float = 0.002,
        max_batch: int = 256,
    ):
        self.model = model
        self.backend = backend
        self.window_s = window_s
        self.max_batch = max_batch
        self.stats = BatchStats()
        self.loaded = False
        self.on_batch: Callable[[str, int], None] | None = None
        # one thread owns the backend: load, submit, poll, abort and close all run on it
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{model.id}")
        self._load_lock = asyncio.Lock()
        # an endpoint that batches by itself takes asks one by one, on the event loop
        self.direct = backend.capabilities.endpoint
        self._slots = asyncio.Semaphore(max_batch)
        self._active = 0  # asks in flight at a direct endpoint
        self._gate: asyncio.Future | None = None  # the next instant gathered asks go out together
        # an in-process engine: its stream, the asks waiting to go in, those in flight
        self.stream = None if self.direct else as_stream(backend)
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._flying: dict[str, tuple[asyncio.Future, int]] = {}  # request id -> (future, batch size)
        self._collector: Collector[Sample] = Collector(backend.name)
        self._aborts: set[str] = set()  # asks in flight whose client went away

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self, load: bool = True) -> None:
        if not self.direct:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._feed(), name=f"stream[{self.model.id}]")
        if load:
            try:
                await self.ensure_loaded()
            except CascadecError as exc:  # an endpoint down at startup: retried on first use
                log.warning("engine for %s not ready: %s", self.model.id, exc.message)

    async def ensure_loaded(self) -> None:
        if self.loaded:
            return
        async with self._load_lock:
            if not self.loaded:
                load = self.backend.load if self.stream is None else self.stream.load
                await asyncio.get_running_loop().run_in_executor(self._pool, load, self.model)
                self.loaded = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for future, _ in self._flying.values():
            future.cancel()
        self._flying.clear()
        if self.direct:
            await cast(EndpointBackend, self.backend).aclose()
        close = self.backend.close if self.stream is None else self.stream.close
        await asyncio.get_running_loop().run_in_executor(self._pool, close)
        self._pool.shutdown(wait=False)
        self.loaded = False

    # --- asking ---------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> tuple[list[Sample], int]:
        """The request's samples, and how many requests were in flight at the engine with it.

        Cancelled (the client went away, the request timed out): the ask is aborted on the engine."""
        if self.direct:
            return await self._send(request)
        assert self._queue is not None, "engine not started"
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((request, future))
        try:
            return await future
        except asyncio.CancelledError:
            if request.request_id in self._flying:
                self._aborts.add(request.request_id)
            raise

    @property
    def can_stream(self) -> bool:
        """Only an HTTP endpoint streams text here (its ``astream``)."""
        return self.direct

    async def stream_text(self, request: GenerationRequest, on_delta: Delta) -> Sample:
        """One sample (``n`` must be 1), its text passed to ``on_delta`` as the engine makes it."""
        await self.ensure_loaded()
        return await cast(EndpointBackend, self.backend).astream(request, on_delta)

    async def _send(self, request: GenerationRequest) -> tuple[list[Sample], int]:
        """One ask straight to an endpoint that batches continuously (at most ``max_batch`` at once).

        Asks that arrive within ``window_s`` of each other go out together: the endpoint then
        runs them in the same engine steps instead of one short batch after another.
        """
        await self.ensure_loaded()
        if self.window_s > 0:
            await asyncio.shield(self._next_gate())
        async with self._slots:
            self._active += 1
            size = self._active
            try:
                samples = await cast(EndpointBackend, self.backend).acomplete(request)
            except Exception as exc:
                if not isinstance(exc, CascadecError):
                    log.error("engine %s failed: %s: %s", self.model.id, type(exc).__name__, exc)
                raise
            finally:
                self._active -= 1
        self._count(size, size)
        return samples, size

    def _next_gate(self) -> asyncio.Future:
        if self._gate is None:
            loop = asyncio.get_running_loop()
            gate = self._gate = loop.create_future()

            def open_gate() -> None:
                self._gate = None
                gate.set_result(None)

            loop.call_later(self.window_s, open_gate)
        return self._gate

    # --- the stream of an in-process engine -----------------------------------------------
    async def _feed(self) -> None:
        """Submit waiting asks, abort abandoned ones, poll, hand out finished asks; repeat."""
        queue = self._queue
        assert queue is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._flying:  # idle: wait for an ask, then for the others of its instant
                first = await queue.get()
                queue.put_nowait(first)
                if self.window_s > 0:
                    await asyncio.sleep(self.window_s)
            batch = []
            while not queue.empty() and len(self._flying) + len(batch) < self.max_batch:
                request, future = queue.get_nowait()
                if not future.done():  # else its client gave up before it went in
                    batch.append((request, future))
            if batch:
                try:
                    await self.ensure_loaded()
                except Exception as exc:
                    self._fail([f for _, f in batch], exc)
                    batch = []
            aborts, self._aborts = self._aborts, set()
            try:
                refused, events = await loop.run_in_executor(
                    self._pool, self._step, [r for r, _ in batch], aborts
                )
            except Exception as exc:  # the engine failed: every ask in it gets the failure
                self._fail([f for f, _ in self._flying.values()] + [f for _, f in batch], exc)
                for rid in list(self._flying):
                    self._collector.drop(rid)
                self._flying.clear()
                continue
            accepted = [(r, f) for r, f in batch if r.request_id not in refused]
            for request, future in batch:
                if request.request_id in refused:
                    self._fail([future], refused[request.request_id])
            size = len(self._flying) + len(accepted)
            for request, future in accepted:
                self._flying[request.request_id] = (future, size)
                if future.done():  # its client went away while it went in
                    self._aborts.add(request.request_id)
            if accepted:
                self._count(len(accepted), size)
            self._take(events)

    def _step(self, requests: list[GenerationRequest], aborts: set[str]):
        """On the engine's thread: abort, submit (each ask alone: one the engine refuses fails
        alone), then poll while anything is in flight."""
        stream = self.stream
        assert stream is not None
        for rid in aborts:
            stream.abort(rid)
        refused: dict[str, Exception] = {}
        for request in requests:
            try:
                stream.submit([request])
            except Exception as exc:
                refused[request.request_id] = exc
                continue
            self._collector.expect(request)
        events = stream.poll(POLL_S) if len(self._collector) else []
        return refused, events

    def _take(self, events: list[StreamEvent]) -> None:
        for ev in events:
            if ev.sample is None:  # tokens of a running sample: nobody watches them here
                continue
            self._collector.check(ev, f" (model {self.model.id})")
            future, size = self._flying[ev.request_id]
            if future.done() and ev.sample.finish_reason == ABORT:
                self.stats.aborted += 1
            samples = self._collector.add(ev.request_id, ev.index, ev.sample)
            if samples is None:
                continue
            del self._flying[ev.request_id]
            if not future.done():
                future.set_result((samples, size))

    def _fail(self, futures: list[asyncio.Future], exc: Exception) -> None:
        if not isinstance(exc, CascadecError):
            log.error("engine %s failed: %s: %s", self.model.id, type(exc).__name__, exc)
        for future in futures:
            if not future.done():
                future.set_exception(exc)

    def _count(self, asks: int, size: int) -> None:
        """``asks`` went in together, ``size`` asks are in flight with them."""
        s = self.stats
        s.batches += 1
        s.requests += asks
        s.largest = max(s.largest, size)
        s.sizes = [*s.sizes[-19:], size]
        if self.on_batch is not None:
            self.on_batch(self.model.id, size)


def cores_each(engines: int) -> int:
    """OpenMP threads per engine when ``engines`` engines share the cores this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, engines))


class EnginePool:
    """The engines of every model the server can reach, by model id."""

    def __init__(self, engines: Mapping[str, Engine]):
        self.engines = dict(engines)
        self._serial = itertools.count()

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.engines

    def __getitem__(self, model_id: str) -> Engine:
        return self.engines[model_id]

    def next_serial(self) -> int:
        """Unique per server: request ids stay unique even for identical concurrent prompts."""
        return next(self._serial)

    async def start(self) -> None:
        t0 = time.perf_counter()
        await asyncio.gather(*(e.start() for e in self.engines.values()))
        log.info("%d engines ready in %.1fs", len(self.engines), time.perf_counter() - t0)

    async def stop(self) -> None:
        await asyncio.gather(*(e.stop() for e in self.engines.values()), return_exceptions=True)


def build_engines(
    models: Mapping[str, PlanModel],
    kind: str,
    *,
    endpoints: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 120.0,
    window_s: float = 0.002,
    max_batch: int = 256,
    backends: Mapping[str, Backend] | None = None,
    bank: str | Path | None = None,
) -> EnginePool:
    """An engine per model: given ``backends``, or built for ``kind`` (endpoints | local | replay:
    ``bank``'s recorded samples, an engine per model it holds)."""
    made: dict[str, Backend] = dict(backends or {})
    if not made:
        if kind == "replay":
            from cascadec.runtime.backends.replay import ReplayBackend, read_bank

            if bank is None:
                raise CascadecError("--engines replay needs --bank BANK", code="E900")
            samples = read_bank(bank)  # read once, shared by the engines
            recorded = set(samples["model"].astype(str))
            made = {m: ReplayBackend(samples) for m in models if {m, models[m].path} & recorded}
            if not made:
                raise CascadecError(
                    f"the bank {bank} holds no model of the registry (it has: {', '.join(sorted(recorded))}); "
                    "pass the registry it was recorded with (--models)",
                    code="E900",
                )
        elif kind == "local":
            from cascadec.runtime.backends.vllm_offline import VLLMBackend

            # engines side by side share the cores: full OpenMP teams spin against each other
            threads = cores_each(len(models)) if len(models) > 1 else None
            made = {m: VLLMBackend(cpu_threads=threads) for m in models}
        else:
            from cascadec.runtime.backends.openai_http import OpenAIBackend, read_endpoints

            if endpoints is not None and endpoints.startswith(("http://", "https://")):
                opts: dict = {"base_url": endpoints}
            else:
                opts = {"endpoints": endpoints}
            for m in models:
                backend = OpenAIBackend(api_key=api_key, timeout_s=timeout_s, max_retries=0, **opts)
                if "base_url" in opts or m in backend.endpoints:
                    made[m] = backend
            if not made:
                known = ", ".join(sorted(read_endpoints(endpoints) if endpoints else {})) or "none"
                raise CascadecError(
                    f"no endpoint for any model of the registry (endpoints for: {known}); start them "
                    "with runtime/launch_vllm_serve.sh and pass --endpoints FILE|URL, or use --engines local",
                    code="E900",
                )
    return EnginePool(
        {
            m: Engine(models[m], b, window_s=window_s, max_batch=max_batch)
            for m, b in made.items()
            if m in models
        }
    )
