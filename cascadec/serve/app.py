"""The ASGI app: OpenAI's ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``,
plus ``/health`` and ``/metrics``, on FastAPI.

Request bodies are read under a size limit and validated here (not by FastAPI's automatic
validation) so every failure is an OpenAI-style error with a cascadec code. Admission is
bounded: ``max_concurrency`` requests run, ``max_queue`` wait, the rest get 429. Every
request has a deadline; an engine that does not answer becomes a 503 naming the tier.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from cascadec.plan import data_columns
from cascadec.redact import install_log_redaction
from cascadec.runtime.backends.base import Backend
from cascadec.runtime.equivalence import Equivalence
from cascadec.serve.cascade import CascadeRunner, Outcome, summary, upstream_error
from cascadec.serve.catalog import Catalog
from cascadec.serve.config import ServeConfig
from cascadec.serve.engines import EnginePool, build_engines
from cascadec.serve.errors import ServeError, invalid, too_large
from cascadec.serve.metrics import Metrics
from cascadec.serve.protocol import (
    ChatRequest,
    CompletionRequest,
    chat_response,
    chunk,
    completion_response,
    new_id,
    usage,
    with_columns,
)
from cascadec.serve.tokens import warm_tokenizers

log = logging.getLogger("cascadec.serve")
NO_STRATEGY = "-"  # metrics label of requests that never resolved to a strategy
OTHER = "other"  # metrics label of every strategy not configured (a marker a client made up)
MAX_JSON_DEPTH = 32  # nesting of a request body (OpenAI's bodies nest 4 deep)
MAX_INT_DIGITS = 19  # digits of an integer in a request body (int64; never a 5,000-digit max_tokens)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")
_BRANCHES = {"str", "int", "float", "bool", "none", "list", "dict"}  # pydantic's union branch names


def _depth(body: bytes) -> int:
    """How deep a JSON text nests (strings skipped), counted before the parser recurses."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b"", body)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _constant(text: str):
    raise ValueError(f"{text} is not JSON (numbers must be finite)")


def parse_body(body: bytes):
    """A request body as JSON data; ServeError 400 (E602) for anything else: not JSON, nested
    deeper than MAX_JSON_DEPTH, an integer longer than MAX_INT_DIGITS, NaN or infinity, a lone
    surrogate (not Unicode text: it could not be encoded into a prompt, a log or a reply)."""
    if _depth(body) > MAX_JSON_DEPTH:
        raise ServeError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels", code="E602")
    try:
        data = json.loads(body, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ServeError(400, f"request body is not JSON: {exc}", code="E602") from None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ServeError(
            400, "request body holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text", code="E602"
        ) from None
    return data


DISCONNECT_POLL_S = 0.25  # how often a request in flight looks whether its client is still there


async def unless_gone(request: Request, work) -> None:
    """Await ``work`` unless ``request``'s client disconnects first: then it is cancelled (the
    engines abort what it still waits for) and the request ends with 499."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise ServeError(499, "the client disconnected: its samples were aborted", code="E602")
    finally:
        if not task.done():  # cancelled from outside (the timeout): the work stops too
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class Admission:
    """At most ``concurrency`` requests at once and ``queue`` waiting; beyond that, 429."""

    def __init__(self, concurrency: int, queue: int):
        self.sem = asyncio.Semaphore(concurrency)
        self.queue = queue
        self.waiting = 0

    async def acquire(self) -> None:
        if self.sem.locked() and self.waiting >= self.queue:
            raise ServeError(429, "server busy: too many requests in flight; retry later", code="E604")
        self.waiting += 1
        try:
            await self.sem.acquire()
        finally:
            self.waiting -= 1

    def release(self) -> None:
        self.sem.release()


def request_models(catalog: Catalog) -> dict[str, type]:
    """The request bodies (chat, text) with a number field per data column the served specs read
    (bucket, difficulty, router inputs); E607 for a column no request could give."""
    columns = data_columns([s.strategy for s in catalog.specs.values()])
    return {"chat": with_columns(ChatRequest, columns), "text": with_columns(CompletionRequest, columns)}


class Server:
    """Everything a running server holds: catalog, engines, runner, limits, metrics."""

    def __init__(self, config: ServeConfig, catalog: Catalog, engines: EnginePool):
        self.config = config
        self.catalog = catalog
        self.engines = engines
        self.eq = Equivalence(config.equivalence)
        self.runner = CascadeRunner(engines, self.eq)
        self.metrics = Metrics()
        self.admission: Admission | None = None
        self._labels: frozenset[str] | None = None
        self.reference = catalog.reference
        self.metrics.reference_cost_per_token = self.reference.params
        self.requests = request_models(catalog)
        for engine in engines.engines.values():
            engine.on_batch = self.metrics.engine_batch

    # --- request plumbing -----------------------------------------------------------------
    def label(self, name: str) -> str:
        """The metrics label of a strategy: a configured name (a spec, a registry model or alias),
        else ``other`` — a client making up markers never grows the label set."""
        if self._labels is None:
            self._labels = frozenset(self.catalog.names())
        return name if name in self._labels else OTHER

    def authorize(self, request: Request) -> None:
        token = self.config.auth_token()
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ServeError(401, "missing or wrong bearer token (Authorization: Bearer ...)", code="E605")

    async def read_body(self, request: Request, model_cls):
        limit = self.config.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(f"request body of {declared} bytes exceeds {limit} (--max-request-bytes)")
        body = bytearray()
        try:
            async for part in request.stream():
                body += part
                if len(body) > limit:
                    raise too_large(f"request body exceeds {limit} bytes (--max-request-bytes)")
        except ClientDisconnect:  # the client went away mid-body: nobody to answer, nothing to log
            raise ServeError(
                400, "the client disconnected before sending the whole body", code="E602"
            ) from None
        data = parse_body(bytes(body))
        if not isinstance(data, dict):
            raise ServeError(400, "request body must be a JSON object", code="E602")
        try:
            return model_cls.model_validate(data)
        except ValidationError as exc:
            # of a union's branches, the one that got furthest; its loc without the branch names
            err = max(exc.errors(), key=lambda e: len(e["loc"]))
            loc = [p for p in err["loc"] if not (isinstance(p, str) and (p in _BRANCHES or "[" in p))]
            where = ".".join(str(p) for p in loc)
            raise invalid(f"{where}: {err['msg']}", param=where or None) from None

    def problem_text(self, req) -> str:
        text = req.problem()
        if isinstance(req, CompletionRequest) and isinstance(req.prompt, list) and len(req.prompt) != 1:
            raise invalid("one prompt per request (the cascade answers one problem)", param="prompt")
        if not text.strip():
            what = "the last user message" if isinstance(req, ChatRequest) else "the prompt"
            raise invalid(f"{what} is empty: it is the problem the cascade answers", param="messages")
        if len(text) > self.config.max_prompt_chars:
            raise too_large(
                f"problem of {len(text)} characters exceeds {self.config.max_prompt_chars} (--max-prompt-chars)",
                param="prompt",
            )
        return text

    # --- one request ----------------------------------------------------------------------
    async def answer(self, request: Request, kind: str) -> Response:
        t0 = time.perf_counter()
        strategy = NO_STRATEGY
        try:
            self.authorize(request)
            req = await self.read_body(request, self.requests[kind])
            served = self.catalog.resolve(req.model)
            strategy = self.label(served.name)
            self.runner.check(served)
            text = self.problem_text(req)
            outcome = self.runner.start(served, text, seed=req.seed, data=req.data(), pid=req.problem_id)
            assert self.admission is not None
            await self.admission.acquire()
        except ServeError as exc:
            self.metrics.status(strategy, exc.status)
            return error_response(exc)
        if req.stream:
            return await self.stream(kind, req, outcome, t0, request)
        self.metrics.in_flight.inc()
        try:
            await self._drive(outcome, request=request)
        except ServeError as exc:
            self.metrics.status(strategy, exc.status)
            return error_response(exc)
        finally:
            self.admission.release()
            self.metrics.in_flight.dec()
        self.metrics.status(strategy, 200)
        self.metrics.finished(strategy, outcome, time.perf_counter() - t0)
        make = chat_response if kind == "chat" else completion_response
        body = make(new_id("cmpl"), req.model, outcome.text, outcome.finish_reason, *self._extras(outcome))
        return JSONResponse(body)

    async def _drive(self, outcome: Outcome, on_delta=None, request: Request | None = None) -> None:
        """Run the cascade within ``--timeout``; cancelled when ``request``'s client disconnects
        (either way the engines abort the samples it still waits for)."""
        work = self.runner.drive(outcome, on_delta)
        try:
            await asyncio.wait_for(
                work if request is None else unless_gone(request, work), self.config.timeout_s
            )
        except TimeoutError:
            raise upstream_error(
                outcome.job, f"did not answer within {self.config.timeout_s:g}s (--timeout)", unavailable=True
            ) from None

    def _extras(self, outcome: Outcome) -> tuple[dict, dict]:
        use = usage(outcome.prompt_tokens, outcome.completion_tokens)
        return use, summary(outcome, self.reference.params)

    async def stream(self, kind: str, req, outcome: Outcome, t0: float, request: Request) -> Response:
        """Server-sent events: the final tier's tokens as generated, or the chosen sample once decided."""
        rid, events = new_id("cmpl"), asyncio.Queue()
        strategy = self.label(outcome.served.name)

        async def on_delta(text: str) -> None:
            await events.put(("delta", text))

        async def produce() -> None:
            self.metrics.in_flight.inc()
            try:
                await self._drive(outcome, on_delta, request)
                await events.put(("done", None))
            except ServeError as exc:
                await events.put(("error", exc))
            except Exception as exc:  # never leave the client waiting
                log.exception("stream failed")
                await events.put(
                    ("error", ServeError(500, f"internal error: {type(exc).__name__}", code="E999"))
                )
            finally:
                self.admission.release()
                self.metrics.in_flight.dec()

        task = asyncio.create_task(produce())
        first = await events.get()
        if first[0] == "error":
            await task
            self.metrics.status(strategy, first[1].status)
            return error_response(first[1])

        async def sse() -> AsyncIterator[str]:
            event = first
            sent_any = False
            try:
                yield _sse(chunk(kind, rid, req.model, "", role=True))
                while True:
                    what, value = event
                    if what == "delta":
                        sent_any = True
                        yield _sse(chunk(kind, rid, req.model, value))
                    elif what == "error":
                        self.metrics.status(strategy, value.status)
                        yield _sse(value.body())
                        break
                    else:
                        if not sent_any and outcome.text:
                            yield _sse(chunk(kind, rid, req.model, outcome.text))
                        use, cascade = self._extras(outcome)
                        yield _sse(
                            chunk(
                                kind, rid, req.model, None, outcome.finish_reason, extra={"cascade": cascade}
                            )
                        )
                        if req.include_usage:
                            last = chunk(kind, rid, req.model, None, extra={"usage": use})
                            last["choices"] = []
                            yield _sse(last)
                        self.metrics.status(strategy, 200)
                        self.metrics.finished(strategy, outcome, time.perf_counter() - t0)
                        break
                    event = await events.get()
                yield "data: [DONE]\n\n"
            finally:
                if not task.done():
                    task.cancel()

        return StreamingResponse(sse(), media_type="text/event-stream")

    # --- the other endpoints --------------------------------------------------------------
    def model_list(self) -> dict:
        created = int(time.time())
        data = [
            {"id": n, "object": "model", "created": created, "owned_by": "cascadec"}
            for n in self.catalog.names(self.engines.engines)
        ]
        return {"object": "list", "data": data}

    def health(self) -> tuple[int, dict]:
        engines = {
            m: {
                "loaded": e.loaded,
                "batches": e.stats.batches,
                "requests": e.stats.requests,
                "largest_batch": e.stats.largest,
            }
            for m, e in self.engines.engines.items()
        }
        ok = all(e["loaded"] for e in engines.values())
        return (200 if ok else 503), {"status": "ok" if ok else "degraded", "engines": engines}


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def error_response(exc: ServeError) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def create_app(
    config: ServeConfig | None = None,
    *,
    backends: Mapping[str, Backend] | None = None,
    catalog: Catalog | None = None,
) -> FastAPI:
    """The server as an ASGI app; ``backends`` (model id → backend) replaces the configured engines."""
    config = config or ServeConfig()
    install_log_redaction()  # every log line of the server: messages, access log paths, tracebacks
    config.auth_token()  # registered as secrets from the start (cascadec.redact)
    catalog = catalog or Catalog(config.models, config.specs, config.max_samples)
    request_models(catalog)  # a spec routing by a column no request can carry: E607 before any engine
    engines = build_engines(
        catalog.models,
        config.engines,
        endpoints=config.endpoints,
        api_key=config.upstream_key(),
        timeout_s=config.timeout_s,
        window_s=config.batch_window_ms / 1000,
        max_batch=config.max_batch,
        backends=backends,
        bank=config.bank,
    )
    server = Server(config, catalog, engines)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        server.admission = Admission(config.max_concurrency, config.max_queue)
        if config.equivalence == "math":
            server.eq.warm_up()
        paths = [e.model.path for e in engines.engines.values()]
        await asyncio.gather(engines.start(), asyncio.to_thread(warm_tokenizers, paths))
        try:
            yield
        finally:
            await engines.stop()

    app = FastAPI(title="cascadec serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server

    @app.exception_handler(ServeError)
    async def _serve_error(_request: Request, exc: ServeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown routes and methods in the OpenAI error shape, with a registered code."""
        if exc.status_code == 405:
            return error_response(
                ServeError(405, f"{request.method} is not allowed on {request.url.path}", code="E606")
            )
        if exc.status_code == 404:
            return error_response(ServeError(404, f"no route {request.url.path}", code="E606"))
        return error_response(ServeError(exc.status_code, str(exc.detail), code="E602"))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return error_response(ServeError(500, f"internal error: {type(exc).__name__}", code="E999"))

    @app.get("/openapi.json")
    async def openapi(request: Request) -> JSONResponse:
        server.authorize(request)  # the API's description is behind the same token as the API
        return JSONResponse(app.openapi())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await server.answer(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await server.answer(request, "text")

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        server.authorize(request)
        return server.model_list()

    @app.get("/v1/models/{name:path}")
    async def model(name: str, request: Request) -> dict:
        server.authorize(request)
        served = server.catalog.resolve(name)
        return {"id": served.name, "object": "model", "created": int(time.time()), "owned_by": "cascadec"}

    @app.get("/health")
    async def health() -> JSONResponse:
        status, body = server.health()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        server.authorize(request)
        return Response(server.metrics.render(), media_type=server.metrics.content_type)

    return app
