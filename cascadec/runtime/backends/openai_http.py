"""OpenAI-compatible HTTP backend: each model served by its own ``vllm serve`` endpoint.

Why: the models of a cascade can then live on other GPUs, machines or processes than the
executor (``runtime/launch_vllm_serve.sh`` starts one server per registry model and writes
``endpoints.json``). The executor streams (:mod:`cascadec.runtime.backends.streaming`): ``submit``
sends one ``stream=True`` completion per sample (``n=1``, seed ``request seed + index``, the
seed vLLM gives child ``index`` of an ``n``-sample request), ``poll`` returns samples as their
streams end and ``abort`` closes a sample's stream between chunks — with ``stream=True`` (one
request per sample: more HTTP requests, so not yet the default); by default the executor sends
batches (``generate``) through the streaming adapter: ``load`` points the backend at the model's
endpoint and checks that it really serves that model; ``generate`` sends one ``/completions``
request per problem with ``n = k`` (so the server shares the prompt prefix), many in flight at
once so the server batches them. Sampling parameters are always explicit, and the seed is
``request_seed(seed, first_sample)`` (:mod:`cascadec.core.seeds`), as in the offline backend,
so a retry never repeats samples. ``acomplete`` and ``astream`` send the same request from an
asyncio loop (``cascadec serve`` sends each ask as it comes; ``vllm serve`` batches them); every
path writes and reads the wire format in :mod:`cascadec.runtime.backends.openai_wire`.

Endpoints, first match wins: the ``endpoints`` option (a ``{model id: base URL}`` mapping or
an ``endpoints.json`` path), ``base_url`` (one server for every model), the
``CASCADEC_ENDPOINTS`` environment variable (a path), ``runs/vllm-serve/endpoints.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from cascadec.errors import BackendError, CascadecError, UpstreamUnavailable
from cascadec.limits import MAX_SPEC_BYTES, read_regular_file
from cascadec.plan import PlanModel
from cascadec.redact import redact, register_secret
from cascadec.runtime.backends.base import Capabilities, GenerationRequest, ProgressFn, Sample
from cascadec.runtime.backends.openai_wire import Chunks, choice_sample, completion_args, too_long
from cascadec.runtime.backends.streaming import StreamEvent
from cascadec.runtime.confidence import token_confidence

ENDPOINTS_ENV = "CASCADEC_ENDPOINTS"
DEFAULT_ENDPOINTS = Path("runs/vllm-serve/endpoints.json")
INSTALL_HINT = "the openai backend needs the openai client: pip install 'cascadec[openai]'"
# Seconds an idle pooled connection is kept. Servers close idle keep-alive connections too
# (uvicorn, so `vllm serve`: after 5 s). With the client's default of also 5 s the two race: a
# request sent on a connection the server is closing fails (httpx ReadError; 3 of 30 bursts sent
# 4.95-5.05 s after the last one, on loopback). Expiring first, the client never reuses one.
KEEPALIVE_EXPIRY_S = 2.0


def make_client(url: str, api_key: str, timeout_s: float, max_retries: int, *, asynchronous: bool):
    """An OpenAI client for ``url`` whose pooled connections expire before the server closes them."""
    import openai

    # the HTTP library openai's client is built on (httpx, or httpx2 since openai 3)
    http_lib = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
    limits = http_lib.Limits(
        max_connections=1000, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_EXPIRY_S
    )
    if asynchronous:
        http, client = openai.DefaultAsyncHttpxClient(limits=limits), openai.AsyncOpenAI
    else:
        http, client = openai.DefaultHttpxClient(limits=limits), openai.OpenAI
    return client(base_url=url, api_key=api_key, timeout=timeout_s, max_retries=max_retries, http_client=http)


def read_endpoints(source: str | os.PathLike | Mapping[str, str] | None) -> dict[str, str]:
    """``{model id: base URL}`` from a mapping or an ``endpoints.json`` file."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {str(k): str(v) for k, v in source.items()}
    path = Path(source)
    try:
        data = json.loads(read_regular_file(path, MAX_SPEC_BYTES, "endpoints file").decode("utf-8"))
    except CascadecError as exc:  # missing, a FIFO (would block), too large
        raise BackendError(exc.message, where=exc.where) from None
    except (UnicodeDecodeError, RecursionError):
        raise BackendError("endpoints file is not UTF-8 JSON", where=path) from None
    except json.JSONDecodeError as exc:
        raise BackendError(
            f'{path}: not JSON ({exc.msg}); expected {{"<model id>": "http://host:port/v1"}}'
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise BackendError(f'{path}: expected {{"<model id>": "http://host:port/v1"}}')
    return data


class OpenAIBackend:
    """Talks to OpenAI-compatible completion servers (``vllm serve``), one per model."""

    name = "openai"

    def __init__(
        self,
        *,
        endpoints: str | os.PathLike | Mapping[str, str] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        logprobs: int = 5,
        concurrency: int = 64,
        timeout_s: float = 600.0,
        max_retries: int = 2,
        stream: bool = False,
    ):
        if logprobs < 0 or concurrency < 1:
            raise ValueError("logprobs must be >= 0 and concurrency >= 1")
        if endpoints is None and base_url is None:
            env = os.environ.get(ENDPOINTS_ENV)
            endpoints = env if env else (DEFAULT_ENDPOINTS if DEFAULT_ENDPOINTS.is_file() else None)
        self.endpoints = read_endpoints(endpoints)
        self.base_url = base_url
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        register_secret(self.api_key)  # an upstream echoing it back never shows it (cascadec.redact)
        self.logprobs = int(logprobs)
        self.concurrency = int(concurrency)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        # the executor streams through it when asked (stream=True) or when a run watches tokens;
        # the server sends it each ask on the event loop (acomplete, astream)
        self.capabilities = Capabilities(stream=True, stream_by_default=bool(stream), endpoint=True)
        self.model: PlanModel | None = None
        self.url: str | None = None
        self.info: dict = {}
        self._client = None
        self._async = None  # AsyncOpenAI of the loaded endpoint (acomplete, astream)
        self._pool: ThreadPoolExecutor | None = None
        self._events: queue.Queue = queue.Queue()
        self._in_flight: dict[str, int] = {}  # streamed request id -> samples still to come
        self._abort: dict[tuple[str, int], threading.Event] = {}

    # --- protocol -------------------------------------------------------------------------
    def load(self, model: PlanModel) -> None:
        """Point at ``model``'s endpoint and check that the server serves it."""
        try:
            import openai
        except ImportError:
            raise BackendError(INSTALL_HINT) from None
        url = self.endpoints.get(model.id) or self.base_url
        if url is None:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise BackendError(
                f"no endpoint for model {model.id!r} (endpoints for: {known}); start one with "
                f"runtime/launch_vllm_serve.sh, or pass --endpoints FILE|URL"
            )
        self.close()
        client = make_client(url, self.api_key, self.timeout_s, self.max_retries, asynchronous=False)
        try:
            served = [str(m.id) for m in client.models.list()]
        except openai.APIConnectionError:
            client.close()
            raise UpstreamUnavailable(
                f"cannot reach {url} for model {model.id!r}: is its server running?"
            ) from None
        except openai.APIError as exc:
            client.close()
            raise BackendError(f"{url}: listing models failed: {redact(str(exc))}") from None
        except MALFORMED as exc:
            client.close()
            raise malformed(url, "its model list", exc) from None
        if model.id not in served:
            client.close()
            raise BackendError(
                f"{url} serves {', '.join(served) or 'no model'}, not {model.id!r} "
                f"(start it with --served-model-name {model.id})"
            )
        self._client, self.model, self.url = client, model, url
        self.info = {"url": url, "served": served}

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[list[Sample]]:
        """Exactly ``n`` samples per request, in request order; ``progress(1)`` per finished one."""
        if not requests:
            return []
        if self._client is None:
            raise BackendError("openai backend: no model loaded (call load first)")
        out: list[list[Sample] | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = {pool.submit(self._complete, r): i for i, r in enumerate(requests)}
            try:
                for future in as_completed(futures):
                    out[futures[future]] = future.result()
                    if progress is not None:
                        progress(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for flag in self._abort.values():
            flag.set()
        self._abort, self._in_flight, self._events = {}, {}, queue.Queue()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
        self._client, self._async, self.model, self.url = None, None, None, None

    # --- streaming (cascadec.runtime.backends.streaming) ------------------------------------
    def submit(self, requests: Sequence[GenerationRequest], stream_tokens: bool = False) -> None:
        """One streamed ``/completions`` call per sample (``n=1``, seed request seed + index)."""
        if self._client is None:
            raise BackendError("openai backend: no model loaded (call load first)")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="cascadec-openai"
            )
        for req in requests:
            greedy = req.temperature <= 0
            self._in_flight[req.request_id] = req.n
            for i in range(1 if greedy else req.n):
                flag = threading.Event()
                indices = list(range(req.n)) if greedy else [i]
                for j in indices:
                    self._abort[req.request_id, j] = flag
                self._pool.submit(self._stream_one, req, i, indices, flag, stream_tokens)

    def abort(self, request_id: str, index: int | None = None) -> None:
        """Stop a sample (or every sample of a request): its stream is closed between chunks."""
        for (rid, j), flag in self._abort.items():
            if rid == request_id and (index is None or j == index):
                flag.set()

    def poll(self, timeout: float | None = None) -> list[StreamEvent]:
        if not self._in_flight:
            return []
        events: list[StreamEvent] = []
        try:
            item = self._events.get(timeout=timeout)
            while True:
                if isinstance(item, BaseException):
                    raise item
                events.append(item)
                item = self._events.get_nowait()
        except queue.Empty:
            pass
        for ev in events:
            if ev.sample is not None:
                self._abort.pop((ev.request_id, ev.index), None)
                self._in_flight[ev.request_id] -= 1
                if self._in_flight[ev.request_id] <= 0:
                    del self._in_flight[ev.request_id]
        return events

    def _stream_one(
        self, req: GenerationRequest, i: int, indices: list[int], flag, stream_tokens: bool
    ) -> None:
        """Run in a pool thread: stream sample ``i`` of ``req`` into the event queue."""
        import openai

        chunks = Chunks()
        try:
            stream = self._client.completions.create(**self.request_args(req, offset=i, stream=True))
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        new = chunks.add(choice)
                        if stream_tokens and new:
                            confs = tuple(
                                token_confidence((t or {}).values(), self.logprobs)
                                for t in chunks.tops[-len(new) :]
                            )
                            for j in indices:
                                self._events.put(
                                    StreamEvent(req.request_id, j, logprobs=new, confidences=confs)
                                )
                    if flag.is_set():
                        chunks.finish = "abort"
                        break
        except openai.BadRequestError as exc:
            if not too_long(exc):
                self._events.put(BackendError(f"{self.url}: request {req.request_id} rejected: {exc}"))
                return
            chunks.finish = "length"
        except openai.APIError as exc:
            self._events.put(self.failure(exc, req))
            return
        except MALFORMED as exc:
            self._events.put(malformed(self.url, f"model {self.model_id!r}", exc))
            return
        try:
            sample = self.to_sample(chunks.choice())
        except CascadecError as exc:
            self._events.put(exc)
            return
        if chunks.finish == "abort":
            sample = Sample(
                sample.text, sample.num_tokens, "abort", sample.logprobs, sample.entropies, sample.confidences
            )
        for j in indices:
            self._events.put(StreamEvent(req.request_id, j, sample))

    # --- one request ----------------------------------------------------------------------
    def request_args(self, request: GenerationRequest, *, offset: int = 0, stream: bool = False) -> dict:
        """The ``/completions`` arguments of ``request`` (or of its sample ``offset`` alone, streamed)."""
        assert self.model is not None
        return completion_args(request, self.model.id, self.logprobs, offset=offset, stream=stream)

    def _complete(self, request: GenerationRequest) -> list[Sample]:
        import openai

        assert self.model is not None and self._client is not None
        try:
            response = self._client.completions.create(**self.request_args(request))
        except openai.APIError as exc:
            return self._refused(exc, request)
        except MALFORMED as exc:
            raise malformed(self.url, f"model {self.model_id!r}", exc) from None
        return self.to_samples(response, request)

    async def acomplete(self, request: GenerationRequest) -> list[Sample]:
        """:meth:`generate` for one request, on the running event loop (no thread per request).

        Same arguments, same parsing, same errors as the batch path: a server sends each of
        its clients' asks as soon as it has it and lets ``vllm serve`` batch them continuously.
        """
        import openai

        try:
            response = await self.async_client().completions.create(**self.request_args(request))
        except openai.APIError as exc:
            return self._refused(exc, request)
        except MALFORMED as exc:
            raise malformed(self.url, f"model {self.model_id!r}", exc) from None
        return self.to_samples(response, request)

    async def astream(self, request: GenerationRequest, on_delta) -> Sample:
        """One sample (``n`` must be 1), each piece of text awaited through ``on_delta`` as made."""
        import openai

        chunks = Chunks()
        try:
            stream = await self.async_client().completions.create(**self.request_args(request, stream=True))
            async for chunk in stream:
                for choice in chunk.choices:
                    chunks.add(choice)
                    if choice.text:
                        await on_delta(choice.text)
        except openai.APIError as exc:
            if isinstance(exc, openai.BadRequestError) and too_long(exc):
                return Sample("", 0, "length")
            raise self.failure(exc, request) from None
        except MALFORMED as exc:
            raise malformed(self.url, f"model {self.model_id!r}", exc) from None
        return self.to_sample(chunks.choice())

    def async_client(self):
        """The asyncio client of the loaded endpoint, made on first use (on the caller's loop)."""
        if self.url is None:
            raise BackendError("openai backend: no model loaded (call load first)")
        if self._async is None:
            self._async = make_client(
                self.url, self.api_key, self.timeout_s, self.max_retries, asynchronous=True
            )
        return self._async

    async def aclose(self) -> None:
        """Close the asyncio client on its own loop (then :meth:`close` frees the rest)."""
        if self._async is not None:
            client, self._async = self._async, None
            await client.close()

    def _refused(self, exc, request: GenerationRequest) -> list[Sample]:
        """A prompt too long for the model is n truncated empty samples; anything else fails."""
        import openai

        if isinstance(exc, openai.BadRequestError) and too_long(exc):
            return [Sample("", 0, "length")] * request.n
        raise self.failure(exc, request) from None

    def failure(self, exc, request: GenerationRequest) -> BackendError:
        """The backend error an OpenAI client exception stands for."""
        import openai

        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            why = f": {type(cause).__name__}" if cause is not None else ""
            return UpstreamUnavailable(f"lost the connection to {self.url} (model {self.model_id}){why}")
        why = redact(str(exc))  # an upstream's error body may echo the request's headers
        if isinstance(exc, openai.BadRequestError):
            return BackendError(
                f"{self.url}: model {self.model_id!r}: request {request.request_id} rejected: {why}"
            )
        return BackendError(
            f"{self.url}: model {self.model_id!r}: request {request.request_id} failed "
            f"after {self.max_retries} retries: {why}"
        )

    @property
    def model_id(self) -> str | None:
        return None if self.model is None else self.model.id

    def to_samples(self, response, request: GenerationRequest) -> list[Sample]:
        """The ``n`` samples of one ``/completions`` response, in index order; a response of
        another shape (no choices, a string, wrong types) is a BackendError, never a crash."""
        greedy = request.temperature <= 0
        try:
            choices = sorted(response.choices, key=lambda c: c.index)
        except MALFORMED as exc:
            raise malformed(self.url, f"model {self.model_id!r}", exc) from None
        if len(choices) != (1 if greedy else request.n):
            raise BackendError(f"{self.url} returned {len(choices)} samples for n={request.n}")
        samples = [self.to_sample(c) for c in choices]
        return samples * request.n if greedy else samples

    def to_sample(self, choice) -> Sample:
        """One completion choice (``text``, ``finish_reason``, ``logprobs``) as a sample."""
        try:
            return choice_sample(choice, self.logprobs, self.url)
        except CascadecError:
            raise
        except MALFORMED as exc:
            raise malformed(self.url, f"model {self.model_id!r}", exc) from None


# what reading an upstream's malformed body raises: JSONDecodeError is a ValueError; a body of
# another shape fails on its attributes (the client builds its objects without validating)
MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)


def malformed(url: str | None, what: str, exc: BaseException) -> BackendError:
    """The error of an upstream answering something that is not an OpenAI response."""
    return BackendError(
        f"{url} returned a malformed response for {what} (not the OpenAI completions format: "
        f"{type(exc).__name__}: {redact(str(exc))[:200]})"
    )
