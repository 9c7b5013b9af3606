"""No secret through an error or a log (issue 24): an upstream that echoes the key it was sent,
a client putting a key in the query string. One redaction (``cascadec.redact``) everywhere.

The upstream is a tiny loopback server that answers every completion with an error body
quoting the request's ``Authorization`` header and the bare key.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cascadec.errors import BackendError
from cascadec.plan import plan_to_json
from cascadec.redact import MARK, redact, register_secret
from cascadec.runtime.testing import make_plan, strategy, tier

KEY = "Zq7-my-private-key-9081"  # no well-known shape: only the configured key's value finds it
ZOO_S = "cascadec-zoo/arith-0.034M"


class EchoingEndpoint(BaseHTTPRequestHandler):
    status = 401

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # /v1/models
        ids = ["S", "L", ZOO_S]
        self._send(
            200, json.dumps({"object": "list", "data": [{"id": m, "object": "model"} for m in ids]}).encode()
        )

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        message = (
            f"bad credentials {auth.split()[-1]} (you sent Authorization: {auth}; api_key={auth.split()[-1]})"
        )
        self._send(self.status, json.dumps({"error": {"message": message, "type": "auth"}}).encode())


@pytest.fixture
def upstream():
    handler = type("Handler", (EchoingEndpoint,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer sk-proj-abcdefgh12345678",
        '{"headers": {"authorization": "Bearer abcdefgh12345678"}}',
        "GET /v1/models?api_key=hunter2hunter2&x=1",
        "https://me:pa55word@example.com/v1",
        "OPENAI_API_KEY=sk-live-ABCDEF123456 in the environment",
        "token=abcdefghij, password: swordfish",
        "hf_abcdefghijklmnopqrstuvwxyz and ghp_abcdefghijklmnopqrstuvwxyz0123",
    ],
)
def test_secret_shapes_are_redacted(text):
    out = redact(text)
    assert MARK in out
    for secret in (
        "sk-proj-abc",
        "abcdefgh12345678",
        "hunter2",
        "pa55word",
        "sk-live",
        "swordfish",
        "hf_abc",
        "ghp_abc",
    ):
        assert secret not in out, out


def test_ordinary_messages_are_left_alone():
    for text in (
        "unknown key 'tiers' (did you mean 'tier'?)",
        "max_tokens: 48, k: 4",
        "missing or wrong bearer token (Authorization: Bearer ...)",
        "http://127.0.0.1:8000/v1: model 'S': request 3 failed",
    ):
        assert redact(text) == text


def test_a_configured_key_is_redacted_wherever_it_appears():
    register_secret("k-3xample-configured")
    err = BackendError("upstream said: your key k-3xample-configured is wrong")
    assert "k-3xample-configured" not in str(err) and "k-3xample-configured" not in err.message


def test_run_never_prints_a_key_the_upstream_echoes(upstream, tmp_path):
    pytest.importorskip("openai")
    url, _ = upstream
    plan = make_plan([strategy("c", [tier("S", 1, 0.0)])], {"S": 1.5})
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    (tmp_path / "data.jsonl").write_text(json.dumps({"id": "p0", "problem": "1+1=", "answer": "2"}) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "cascadec", "run", str(tmp_path / "plan.json"), "--data", str(tmp_path / "data.jsonl"),
         "--out", str(tmp_path / "out"), "--backend", "openai", "--endpoints", url, "--no-progress",
         "--equivalence", "exact"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OPENAI_API_KEY": KEY},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "E501" in out and "bad credentials" in out, out
    assert KEY not in out and "Traceback" not in out
    journal = tmp_path / "out" / "samples.jsonl"
    assert not journal.exists() or KEY not in journal.read_text()


def test_serve_502_and_logs_never_carry_the_upstream_key(upstream, monkeypatch, caplog, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cascadec.serve import ServeConfig, create_app

    url, handler = upstream
    handler.status = 500
    monkeypatch.setenv("CASCADEC_UPSTREAM_API_KEY", KEY)
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({ZOO_S: url}))
    config = ServeConfig(models="zoo", equivalence="exact", endpoints=str(endpoints), timeout_s=20)
    with TestClient(create_app(config)) as http:
        r = http.post("/v1/completions", json={"model": "0.034M", "prompt": "1+1="})
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "E603" and "bad credentials" in r.text
    assert KEY not in r.text and KEY not in caplog.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_access_log_never_carries_a_query_string_key(upstream, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    url, _ = upstream
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({ZOO_S: url}))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cascadec", "serve", "--models", "zoo", "--endpoints", str(endpoints),
         "--equivalence", "exact", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        r = httpx.get(
            f"http://127.0.0.1:{port}/v1/models?api_key=qs-secret-4471&token=qs-token-9932", timeout=5
        )
        assert r.status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    log = out + err
    assert "/v1/models?api_key=" in log, log  # the request is logged...
    assert "qs-secret-4471" not in log and "qs-token-9932" not in log  # ...its key is not
