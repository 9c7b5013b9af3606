"""``cascadec serve`` on hostile requests and upstreams (issue 24, part 5): every answer is a 4xx
or a 502 in the OpenAI error shape with a registered code, never a 500; metric labels stay
bounded; spec names never shadow each other."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

httpx = pytest.importorskip("httpx")
TestClient = pytest.importorskip("fastapi.testclient").TestClient
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_serve import ANSWERS, CASCADE, S, app_for  # noqa: E402

from cascadec.errors import CODES, CascadecError  # noqa: E402
from cascadec.runtime.backends.replay import ReplayBackend  # noqa: E402
from cascadec.runtime.testing import bank_from_answers  # noqa: E402
from cascadec.serve import ServeConfig, create_app  # noqa: E402
from cascadec.serve.catalog import Catalog  # noqa: E402

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}
EXAMPLES = int(os.environ.get("CASCADEC_FUZZ_EXAMPLES", "20"))


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["code"] == code and code in CODES
    return body["error"]


@pytest.fixture(scope="module")
def http():
    with TestClient(app_for(), raise_server_exceptions=False) as client:
        yield client


def _chat(content: str) -> str:
    return (
        json.dumps({"model": CASCADE, "messages": [{"role": "user", "content": "1+1"}]})[:-1] + content + "}"
    )


@pytest.mark.parametrize(
    "body, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nests deeper"),
        ('{"model": "x", "metadata": ' + '{"a": ' * 2000 + "1" + "}" * 2001, "nests deeper"),
        (_chat(', "max_tokens": ' + "9" * 5000), "5000 digits"),
        (_chat(', "seed": ' + "9" * 30), "30 digits"),
        (_chat(', "difficulty": 1e999'), "out of range"),
        (_chat(', "temperature": NaN'), "not JSON"),
        (_chat(', "user": "\\ud800"'), "lone surrogate"),
        ('{"model": "\\udfff", "messages": []}', "lone surrogate"),
    ],
)
def test_hostile_bodies_are_400s(http, body, message):
    err = _error(http.post(CHAT, content=body, headers=JSON), 400, "E602")
    assert message in err["message"]


def test_a_text_part_that_is_not_text_is_a_422(http):
    body = {"model": CASCADE, "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    err = _error(http.post(CHAT, json=body), 422, "E602")
    assert err["param"] == "messages.0.content.0.text"


def test_a_prompt_longer_than_the_context_is_a_400():
    # what every backend returns for a prompt the model cannot take: no text, no token, 'length'
    bank = bank_from_answers(ANSWERS)
    rows = [
        {"model": m, "problem_id": "too-long", "sample_index": i, "text": "", "num_tokens": 0,
         "finish_reason": "length", "logprobs": None, "confidences": None}
        for m in (S, "cascadec-zoo/arith-1.1M") for i in range(4)
    ]  # fmt: skip
    bank = pd.concat([bank, pd.DataFrame(rows)], ignore_index=True)
    catalog = Catalog("zoo", None, 64)
    app = create_app(
        ServeConfig(models="zoo", equivalence="exact"),
        catalog=catalog,
        backends={m: ReplayBackend(bank) for m in catalog.models},
    )
    with TestClient(app, raise_server_exceptions=False) as http:
        body = {
            "model": CASCADE,
            "messages": [{"role": "user", "content": "x " * 50}],
            "problem_id": "too-long",
        }
        err = _error(http.post(CHAT, json=body), 400, "E602")
        assert "does not fit the context" in err["message"]
        r = http.post(CHAT, json={**body, "stream": True})
        _error(r, 400, "E602")


def test_metric_labels_are_the_configured_names_or_other(http):
    for i in range(5):  # markers a client makes up: one label between them
        http.post(
            CHAT,
            json={"model": f"mv_0.034M_k{i + 1}_t0.7", "messages": [{"role": "user", "content": "2+2="}]},
        )
    text = http.get("/metrics").text
    assert 'strategy="other"' in text
    assert "mv_0.034M_k3_t0.7" not in text


def test_duplicate_spec_names_are_refused_at_start_up(tmp_path):
    spec = (
        "version: 1\nname: {name}\nmodels: zoo\nstrategy:\n  mv: {{model: 0.034M, k: 4, temperature: 0.7}}\n"
    )
    (tmp_path / "a.yaml").write_text(spec.format(name="same"))
    (tmp_path / "b.yaml").write_text(spec.format(name="same"))
    with pytest.raises(CascadecError) as err:
        Catalog("zoo", tmp_path, 64)
    assert err.value.code == "E200" and "a.yaml" in err.value.message and "b.yaml" in str(err.value.where)
    (tmp_path / "b.yaml").write_text(spec.format(name="0.034M"))
    with pytest.raises(CascadecError, match="is a model of the registry"):
        Catalog("zoo", tmp_path, 64)


class Malformed(BaseHTTPRequestHandler):
    """An upstream that lists the model, then answers completions with what is not OpenAI's."""

    bodies = {"badjson": b"{not json", "shape": b'{"choices": 5}', "html": b"<html>oops</html>"}

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        ids = ["cascadec-zoo/arith-0.034M", "cascadec-zoo/arith-0.084M", "cascadec-zoo/arith-1.1M"]
        self._send(
            json.dumps({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}).encode()
        )

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        kind = self.server.kind  # type: ignore[attr-defined]
        self._send(self.bodies[kind], "text/html" if kind == "html" else "application/json")


@pytest.fixture
def malformed():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Malformed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["badjson", "shape", "html"])
def test_an_upstream_answering_malformed_json_is_a_502(malformed, kind):
    malformed.kind = kind
    url = f"http://127.0.0.1:{malformed.server_address[1]}/v1"
    app = create_app(ServeConfig(models="zoo", equivalence="exact", endpoints=url))
    with TestClient(app, raise_server_exceptions=False) as http:
        body = {"model": "0.034M", "messages": [{"role": "user", "content": "2+2="}]}
        err = _error(http.post(CHAT, json=body), 502, "E603")
        assert "malformed response" in err["message"]


def test_run_with_the_openai_backend_on_malformed_json_is_a_coded_error(malformed, tmp_path):
    from typer.testing import CliRunner

    from cascadec.cli import app

    malformed.kind = "badjson"
    url = f"http://127.0.0.1:{malformed.server_address[1]}/v1"
    (tmp_path / "p.jsonl").write_text('{"id": "a", "problem": "2+2=", "answer": "4"}\n')
    res = CliRunner().invoke(
        app,
        ["run", "--marker", "0.034M", "--models", "zoo", "--backend", "openai", "--endpoints", url,
         "--data", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "E501" in res.output and "malformed response" in res.output and "Traceback" not in res.output


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
    max_leaves=12,
)
fields = st.sampled_from(
    ["model", "messages", "max_tokens", "seed", "difficulty", "n", "stream", "temperature", "problem_id", "x"]
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.dictionaries(fields, json_values, max_size=6) | json_values)
def test_fuzzed_request_bodies_never_get_a_500(http, body):
    r = http.post(CHAT, content=json.dumps(body), headers=JSON)
    assert r.status_code < 500 or r.json()["error"]["code"] == "E603", r.text
    if r.status_code >= 400:
        assert r.json()["error"]["code"] in CODES
