"""``cascadec serve`` feeds in-process engines the runtime's streaming protocol (issue 21, item 4):
a client that goes away aborts the samples it still waits for, on local engines as at endpoints.

The engines are the replay backend in streaming mode, made slow with ``CASCADEC_REPLAY_DELAY``
and one finished sample per poll, so a request is still generating when its client leaves."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.backends.replay import DELAY_ENV, ReplayBackend
from cascadec.runtime.testing import bank_from_answers
from cascadec.serve import ServeConfig, create_app
from cascadec.serve.app import unless_gone
from cascadec.serve.cascade import problem_id
from cascadec.serve.catalog import Catalog
from cascadec.serve.engines import Engine
from cascadec.serve.errors import ServeError

S = "cascadec-zoo/arith-0.034M"
MARKER = "mv_0.034M_k8_t0.7"  # one tier of 8 samples: no vote to wait for before it is all drawn
EASY = "2+2="
DELAY = 0.05


def bank():
    return bank_from_answers({(S, problem_id(EASY)): ["4"] * 8, (S, "p"): ["4"] * 8})


def slow_replay():
    """Streaming replay that finishes one sample per poll; ``CASCADEC_REPLAY_DELAY`` per poll."""
    return ReplayBackend(bank(), per_poll=1)


def request(rid: str, n: int = 8) -> GenerationRequest:
    return GenerationRequest(rid, "p", "2+2=", n, 0.7, 1.0, 64, 0)


async def _abandon_one_ask():
    engine = Engine(PlanModel(id=S, path=S, params=1.0), slow_replay())
    await engine.start()
    try:
        ask = asyncio.create_task(engine.generate(request("gone")))
        await asyncio.sleep(DELAY * 3.5)  # a few of its 8 samples are in
        ask.cancel()
        await asyncio.gather(ask, return_exceptions=True)
        for _ in range(100):  # the abort goes in at the engine's next step
            if not engine._flying:
                break
            await asyncio.sleep(DELAY)
        aborted = engine.stats.aborted
        samples, _ = await engine.generate(request("next", 2))  # the engine serves on
        return aborted, samples, engine.stream._running
    finally:
        await engine.stop()


def test_an_abandoned_ask_is_aborted_on_the_engine(monkeypatch):
    monkeypatch.setenv(DELAY_ENV, str(DELAY))
    aborted, samples, running = asyncio.run(_abandon_one_ask())
    assert 0 < aborted < 8, "the samples not yet generated were aborted, the others were not"
    assert [s.finish_reason for s in samples] == ["stop", "stop"]
    assert running == []


class _Request:
    def __init__(self, after: float):
        self.gone_at = time.monotonic() + after

    async def is_disconnected(self) -> bool:
        return time.monotonic() >= self.gone_at


def test_a_disconnect_cancels_the_cascade_with_499():
    cancelled = asyncio.Event()

    async def cascade():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def go():
        with pytest.raises(ServeError) as exc:
            await unless_gone(_Request(after=0.1), cascade())
        return exc.value

    err = asyncio.run(go())
    assert err.status == 499 and err.code == "E602"


def test_a_finished_cascade_is_not_a_disconnect():
    async def cascade():
        await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(unless_gone(_Request(after=60), cascade())) == "done"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_client_that_disconnects_aborts_its_samples_on_a_local_engine(monkeypatch):
    """A real server on a socket: the client sends its request, then hangs up mid-generation."""
    monkeypatch.setenv(DELAY_ENV, str(DELAY))
    catalog = Catalog("zoo", None, 64)
    backends = {S: slow_replay()}
    app = create_app(ServeConfig(models="zoo", equivalence="exact"), catalog=catalog, backends=backends)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(1200):  # start-up warms the tokenizers: seconds on a loaded machine
            if server.started:
                break
            time.sleep(0.1)
        body = json.dumps({"model": MARKER, "messages": [{"role": "user", "content": EASY}]}).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(head + body)
            time.sleep(DELAY * 3.5)  # the engine has generated a few of the 8 samples
        engine = app.state.server.engines[S]
        for _ in range(200):
            if engine.stats.aborted and not engine._flying:
                break
            time.sleep(0.05)
        assert 0 < engine.stats.aborted < 8, engine.stats
        assert engine.stream._running == []
    finally:
        server.should_exit = True
        thread.join(timeout=10)
