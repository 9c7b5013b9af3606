"""``cascadec serve`` answers every error in the OpenAI shape with a registered code, keeps its
API description behind its token, logs no traceback when a client leaves mid-body, and fails
to start with one coded line (issue 24)."""

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

httpx = pytest.importorskip("httpx")
TestClient = pytest.importorskip("fastapi.testclient").TestClient

from test_serve import app_for  # noqa: E402

from cascadec.errors import CODES  # noqa: E402

ZOO_S = "cascadec-zoo/arith-0.034M"


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["code"] == code and code in CODES
    return body["error"]


def test_unknown_routes_and_methods_answer_in_the_openai_shape():
    with TestClient(app_for()) as http:
        _error(http.get("/v2/nothing"), 404, "E606")
        err = _error(http.get("/v1/chat/completions"), 405, "E606")
        assert "GET" in err["message"]
        _error(http.post("/health"), 405, "E606")


def test_openapi_is_behind_the_same_token(monkeypatch):
    monkeypatch.setenv("CASCADEC_SERVE_API_KEY", "let-me-in-please")
    with TestClient(app_for()) as http:
        _error(http.get("/openapi.json"), 401, "E605")
        r = http.get("/openapi.json", headers={"Authorization": "Bearer let-me-in-please"})
        assert r.status_code == 200 and "/v1/chat/completions" in r.json()["paths"]
        _error(http.get("/docs"), 404, "E606")


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": ZOO_S, "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def endpoints(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({ZOO_S: f"http://127.0.0.1:{server.server_address[1]}/v1"}))
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "cascadec", "serve", "--equivalence", "exact", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_client_leaving_mid_body_logs_no_traceback(endpoints):
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
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 5000\r\n\r\n" + b'{"model": "0.034M", "prompt": "'
                )
        time.sleep(1.0)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code in (200, 503)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "Traceback" not in out + err and "ClientDisconnect" not in out + err, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--log-level", "loud"], "E900 --log-level must be one of"),
        (["--timeout", "inf"], "E900 --timeout: Input should be a finite number"),
        (["--host", "999.1.1.1"], "E901 --host '999.1.1.1' is not an address"),
    ],
)
def test_bad_start_up_options_are_one_coded_line(args, message):
    done = serve("--endpoints", "http://127.0.0.1:9/v1", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_coded_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve("--endpoints", "http://127.0.0.1:9/v1", "--port", port)
    assert done.returncode == 2 and f"E901 cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
