"""Faults outside cascadec: an OpenAI-compatible endpoint that fails. Bounded retries, one clear
error naming the model and the URL, no secret echoed, nothing of the user's modified.

The endpoint is a tiny loopback server (no engine needed): it lists the model, then answers
every completion with HTTP 500, or drops the connection without an answer.
"""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cascadec.plan import plan_to_json
from cascadec.runtime.testing import make_plan, strategy, tier

SECRET = "sk-test-do-not-echo-0123456789"
PLAN = make_plan(
    [strategy("c", [tier("S", 2, escalate_if="agreement < 0.75"), tier("L", 1, 0.0)])], {"S": 1.5, "L": 72}
)


class FailingEndpoint(BaseHTTPRequestHandler):
    mode = "500"
    posts = 0

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # /v1/models
        body = json.dumps(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in ("S", "L")]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "drop":
            self.close_connection = True
            self.connection.close()
            return
        body = b'{"error": {"message": "engine crashed", "type": "internal_error"}}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def endpoint(request):
    handler = type("Handler", (FailingEndpoint,), {"mode": request.param, "posts": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("endpoint", ["500", "drop"], indirect=True)
def test_failing_endpoint_gives_a_bounded_clear_error(endpoint, tmp_path):
    pytest.importorskip("openai")
    url, handler = endpoint
    (tmp_path / "plan.json").write_text(plan_to_json(PLAN))
    rows = [{"id": f"p{i}", "problem": f"{i}+{i}=", "answer": str(2 * i)} for i in range(3)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cascadec", "run", str(tmp_path / "plan.json"), "--data", str(tmp_path / "data.jsonl"),
         "--out", str(tmp_path / "out"), "--backend", "openai", "--endpoints", url, "--no-progress", "--equivalence", "exact"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert time.monotonic() - started < 60  # seconds on an idle machine; generous for a loaded CI box
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out and "internal error" not in out and SECRET not in out
    assert url in out and ("'S'" in out or "model S" in out), out
    assert 1 <= handler.posts <= 3 * 3  # each of the 3 requests tried at most 1 + 2 retries
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())
