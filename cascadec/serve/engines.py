"""One engine per model: an HTTP endpoint fed ask by ask, an in-process engine fed in batches.

Concurrent HTTP requests each drive their own cascade, so asks for the same model arrive one
by one. How they reach the model depends on what batches:

- ``vllm serve`` batches continuously itself. Its engine sends each ask the moment it exists
  (``OpenAIBackend.acomplete``: the request ``cascadec run`` sends, on the event loop), up to
  ``max_batch`` in flight: no barrier, so a slow ask never holds the others back. The batch a
  response reports is how many asks were in flight at that endpoint with it.
- An in-process backend (``VLLMBackend`` workers from ``--engines local``, replay in tests)
  takes one call at a time: a micro-batcher gathers every ask that arrives while the engine is
  busy (plus ``batch_window_ms``) into the next single ``Backend.generate`` call, the same
  call ``cascadec run`` makes (``n = k`` per ask, so the prompt prefix is shared).
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

from cascadec.errors import CascadecError
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Backend, GenerationRequest, Sample

log = logging.getLogger("cascadec.serve")

Delta = Callable[[str], Awaitable[None]]


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)  # the last few batch sizes (for /health)


class Engine:
    """A loaded backend for one model: asks sent directly (async backends) or micro-batched."""

    def __init__(
        self,
        model: PlanModel,
        backend: Backend,
        *,
        window_s: float = 0.002,
        max_batch: int = 256,
        inflight: int = 1,
    ):
        self.model = model
        self.backend = backend
        self.inflight = inflight
        self.window_s = window_s
        self.max_batch = max_batch
        self.stats = BatchStats()
        self.loaded = False
        self.on_batch: Callable[[str, int], None] | None = None
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=inflight, thread_name_prefix=f"engine-{model.id}")
        self._calls: set[asyncio.Task] = set()
        self._load_lock = asyncio.Lock()
        # an endpoint that batches by itself takes asks one by one, on the event loop
        self.direct = callable(getattr(backend, "acomplete", None))
        self._slots = asyncio.Semaphore(max_batch)
        self._active = 0  # asks in flight at a direct endpoint
        self._gate: asyncio.Future | None = None  # the next instant gathered asks go out together

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self, load: bool = True) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name=f"batcher[{self.model.id}]")
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
                await asyncio.get_running_loop().run_in_executor(self._pool, self.backend.load, self.model)
                self.loaded = True

    async def stop(self) -> None:
        for task in [self._task, *self._calls]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*([self._task] if self._task else []), *self._calls, return_exceptions=True)
        if callable(getattr(self.backend, "aclose", None)):
            await self.backend.aclose()
        await asyncio.get_running_loop().run_in_executor(self._pool, self.backend.close)
        self._pool.shutdown(wait=False)
        self.loaded = False

    # --- asking ---------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> tuple[list[Sample], int]:
        """The request's samples, and how many requests shared the engine call that made them."""
        if self.direct:
            return await self._send(request)
        assert self._queue is not None, "engine not started"
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    @property
    def can_stream(self) -> bool:
        """Only an HTTP endpoint streams here (the OpenAI backend's ``astream``)."""
        return callable(getattr(self.backend, "astream", None))

    async def stream(self, request: GenerationRequest, on_delta: Delta) -> Sample:
        """One sample (``n`` must be 1), its text passed to ``on_delta`` as the engine makes it."""
        await self.ensure_loaded()
        return await self.backend.astream(request, on_delta)

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
                samples = await self.backend.acomplete(request)
            except Exception as exc:
                if not isinstance(exc, CascadecError):
                    log.error("engine %s failed: %s: %s", self.model.id, type(exc).__name__, exc)
                raise
            finally:
                self._active -= 1
        self._count(size)
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

    # --- the batcher ----------------------------------------------------------------------
    async def _loop(self) -> None:
        queue = self._queue
        assert queue is not None
        slots = asyncio.Semaphore(self.inflight)
        while True:
            batch = [await queue.get()]
            await slots.acquire()  # while every call slot is busy, more asks pile up
            if self.window_s > 0:
                await asyncio.sleep(self.window_s)
            while not queue.empty() and len(batch) < self.max_batch:
                batch.append(queue.get_nowait())
            batch = [(r, f) for r, f in batch if not f.done()]  # their clients gave up
            if not batch:
                slots.release()
                continue
            task = asyncio.create_task(self._call(batch))
            self._calls.add(task)
            task.add_done_callback(lambda t: (self._calls.discard(t), slots.release()))

    async def _call(self, batch: list) -> None:
        """One ``Backend.generate`` for the whole batch; each ask gets its samples or the error."""
        try:
            await self.ensure_loaded()
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._pool, self.backend.generate, [r for r, _ in batch]
            )
        except Exception as exc:  # every ask of the batch gets the failure
            if not isinstance(exc, CascadecError):
                log.error("engine %s failed: %s: %s", self.model.id, type(exc).__name__, exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self._count(len(batch))
        for (_, future), samples in zip(batch, outputs, strict=True):
            if not future.done():
                future.set_result((samples, len(batch)))

    def _count(self, size: int) -> None:
        s = self.stats
        s.batches += 1
        s.requests += size
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
