"""``cascadec serve`` with the official OpenAI client, over replay engines (no vLLM).

The app is the real one (FastAPI, the runtime's Job, the per-model batcher); the engines are
the real replay backend serving known samples, so every answer, vote and escalation is known.
Over real ``vllm serve`` endpoints: tests/integration/test_serve_http.py.
"""

import asyncio
import json
import os
import subprocess
import sys

import pytest

# the serve extra (pip install 'cascadec[serve]'); a light install skips this file
httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
TestClient = pytest.importorskip("fastapi.testclient").TestClient

from cascadec.runtime.backends.base import BATCH_ONLY
from cascadec.runtime.backends.openai_http import OpenAIBackend
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.testing import bank_from_answers
from cascadec.serve import ServeConfig, create_app
from cascadec.serve.cascade import problem_id
from cascadec.serve.catalog import Catalog

S, M, L = "cascadec-zoo/arith-0.034M", "cascadec-zoo/arith-0.084M", "cascadec-zoo/arith-1.1M"
CASCADE = "mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0"
EASY, HARD, BROKEN = "2+2=", "123+456=", "9+9="
ANSWERS = {
    (S, problem_id(EASY)): ["4"] * 4,
    (S, problem_id(HARD)): ["579", "578", "1", "579"],
    (L, problem_id(HARD)): ["579"],
    (M, problem_id(EASY)): ["4"],
    (S, problem_id(BROKEN)): ["18", "17", "16", "15"],  # escalates, and 1.1M has no sample: it fails
    (S, "row-7"): ["5"] * 4,  # a run's problem id: the request asks for it by problem_id
}


def app_for(answers=ANSWERS, delay=0.0, **config):
    catalog = Catalog("zoo", config.pop("specs", None), config.get("max_samples", 64))
    bank = bank_from_answers(answers)
    backends = {m: ReplayBackend(bank, delay=delay) for m in catalog.models}
    return create_app(
        ServeConfig(models="zoo", equivalence="exact", **config), catalog=catalog, backends=backends
    )


@pytest.fixture(scope="module")
def http():
    with TestClient(app_for()) as client:
        yield client


@pytest.fixture(scope="module")
def client(http):
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=http, max_retries=0)


def ask(client, problem, model=CASCADE, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": problem}], **kw)


def test_escalation_is_visible_and_the_answer_is_the_winning_sample(client):
    r = ask(client, HARD)
    assert r.choices[0].message.content.endswith("\\boxed{579}.")
    c = r.cascade
    assert c["escalated"] and c["tiers_used"] == 2 and c["final_answer"] == "579"
    assert [t["decision"] for t in c["tiers"]] == ["escalate", "stop"]
    assert c["tiers"][0]["votes"] == {"579": 2, "578": 1, "1": 1}
    assert c["tiers"][0]["signals"]["agreement"] == 0.5
    # usage counts every generated token of every tier: replay samples have 10, 11, 12, ... tokens
    assert r.usage.completion_tokens == (10 + 11 + 12 + 13) + 10
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + 46 + 10
    assert c["cost"] == 46 * 33920 + 10 * 1071488
    assert c["cost_relative"] == pytest.approx(c["cost"] / (10 * 1071488), rel=1e-5)


def test_confident_first_tier_stops_there(client):
    r = client.completions.create(model=CASCADE, prompt=EASY)
    assert r.choices[0].text.endswith("\\boxed{4}.") and r.choices[0].finish_reason == "stop"
    assert r.cascade["tiers_used"] == 1 and r.cascade["stop_reason"] == "confident"
    assert r.cascade["cost_relative"] == pytest.approx(46 * 33920 / (10 * 1071488), rel=1e-5)
    assert r.model == CASCADE


def test_plain_alias_and_marker_spellings(client):
    assert ask(client, EASY, model="0.084M").cascade["kind"] == "plain"
    # any spelling of a marker compiles to the same canonical strategy
    assert ask(client, EASY, model="mv_cascade_0.034M_k04_t0.70_1.1M_k1_t0").cascade["strategy"] == CASCADE


def test_problem_id_selects_the_runs_samples(client):
    r = ask(client, "2+3=", extra_body={"problem_id": "row-7"})
    assert r.cascade["final_answer"] == "5" and r.cascade["tiers_used"] == 1


def test_stream_sends_the_chosen_sample_then_usage(client):
    chunks = list(ask(client, HARD, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("\\boxed{579}.")
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[0].choices[0].finish_reason == "stop" and finish[0].cascade["tiers_used"] == 2
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 56


def test_stream_of_completions(client):
    chunks = list(client.completions.create(model=CASCADE, prompt=EASY, stream=True))
    assert "".join(c.choices[0].text for c in chunks).endswith("\\boxed{4}.")


def test_models_health_and_metrics(http, client, tmp_path):
    ids = [m.id for m in client.models.list()]
    assert {S, "0.034M", "1.1M"} <= set(ids)
    assert client.models.retrieve(CASCADE).id == CASCADE
    health = http.get("/health").json()
    assert health["engines"][S]["loaded"]
    # a marker a client made up is no configured name: its metrics are labelled "other" (bounded)
    ask(client, HARD)
    text = http.get("/metrics").text
    assert f'cascadec_tier_reached_total{{model="{L}",strategy="other",tier="1"}}' in text
    for name in (
        "cascadec_requests_total",
        "cascadec_samples_total",
        "cascadec_tokens_total",
        "cascadec_cost_total",
        "cascadec_request_seconds_bucket",
        "cascadec_engine_batch_requests",
    ):
        assert name in text


def test_specs_are_served_by_name(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "version: 1\nname: my_cascade\nmodels: zoo\ndefaults: {max_tokens: 48, prompt: raw, seed: 0}\n"
        "strategy:\n  cascade:\n    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: 'agreement < 1.0'}\n"
        "    - {model: 1.1M}\n"
    )
    with TestClient(app_for(specs=tmp_path)) as http:
        c = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http)
        assert "my_cascade" in [m.id for m in c.models.list()]
        r = ask(c, HARD, model="my_cascade")
        assert r.cascade["strategy"] == "my_cascade" and r.cascade["tiers_used"] == 2


# --- errors ---------------------------------------------------------------------------------
def test_malformed_marker_is_400_naming_the_problem(client):
    with pytest.raises(openai.BadRequestError) as e:
        ask(client, EASY, model="mv_cascade_0.034M_k4_t0.7_3B_k1_t0.0")
    err = e.value.body
    assert err["code"] == "E105" and "unknown model '3B'" in err["message"] and "^^" in err["message"]
    assert err["param"] == "model"


@pytest.mark.parametrize("model", ["gpt-4", "org/not-served"])
def test_unknown_model_is_404(client, model):
    with pytest.raises(openai.NotFoundError) as e:
        ask(client, EASY, model=model)
    assert e.value.body["code"] == "E600"


def test_bad_requests_are_422(client, http):
    with pytest.raises(openai.UnprocessableEntityError, match="n"):
        ask(client, EASY, n=2)
    with pytest.raises(openai.UnprocessableEntityError, match="empty"):
        ask(client, "   ")
    with pytest.raises(openai.UnprocessableEntityError, match="one prompt"):
        client.completions.create(model=CASCADE, prompt=[EASY, HARD])
    r = http.post("/v1/completions", json={"model": CASCADE, "prompt": EASY, "bogus": 1})
    assert r.status_code == 422 and r.json()["error"]["param"] == "bogus"
    r = http.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "E602"
    with pytest.raises(openai.UnprocessableEntityError, match="up to 100 samples"):
        ask(client, EASY, model="mv_0.034M_k100_t0.7")


def test_oversized_input_is_413():
    with TestClient(app_for(max_request_bytes=4096, max_prompt_chars=100)) as http:
        c = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http, max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            ask(c, "1+" * 60 + "1=")
        assert e.value.status_code == 413 and "max-prompt-chars" in e.value.body["message"]
        with pytest.raises(openai.APIStatusError) as e:
            ask(c, "x" * 5000)
        assert e.value.status_code == 413 and e.value.body["code"] == "E601"


def test_failing_tier_is_502_naming_it(client):
    with pytest.raises(openai.APIStatusError) as e:
        ask(client, BROKEN)
    assert e.value.status_code == 502
    assert e.value.body["code"] == "E603" and f"tier 1 ({L})" in e.value.body["message"]


def test_slow_tier_is_503_not_a_hang():
    with TestClient(app_for(delay=1.0, timeout_s=0.3)) as http:
        c = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http, max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            ask(c, EASY)
        assert e.value.status_code == 503 and f"tier 0 ({S})" in e.value.body["message"]


def test_unreachable_endpoint_is_503_and_the_upstream_key_stays_secret(monkeypatch, caplog, tmp_path):
    secret = "sk-upstream-secret-123"
    monkeypatch.setenv("CASCADEC_UPSTREAM_API_KEY", secret)
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({S: "http://127.0.0.1:9/v1"}))  # discard port: nothing listens
    config = ServeConfig(models="zoo", equivalence="exact", endpoints=str(endpoints), timeout_s=5)
    app = create_app(config)
    with TestClient(app) as http:
        listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
        assert "0.034M" in listed and "0.084M" not in listed, "only models with an endpoint are listed"
        r = http.post("/v1/completions", json={"model": "mv_0.084M_k2_t0.7", "prompt": EASY})
        assert r.status_code == 404 and "no engine serves model" in r.json()["error"]["message"]
        r = http.post(
            "/v1/chat/completions", json={"model": "0.034M", "messages": [{"role": "user", "content": EASY}]}
        )
        assert r.status_code == 503 and f"tier 0 ({S})" in r.json()["error"]["message"]
        assert secret not in r.text and secret not in http.get("/health").text
    assert secret not in caplog.text
    backend = app.state.server.engines[S].backend
    assert isinstance(backend, OpenAIBackend) and backend.api_key == secret


def test_bearer_auth(monkeypatch):
    monkeypatch.setenv("CASCADEC_SERVE_API_KEY", "let-me-in")
    with TestClient(app_for()) as http:
        wrong = openai.OpenAI(
            base_url="http://testserver/v1", api_key="nope", http_client=http, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError):
            ask(wrong, EASY)
        assert http.get("/metrics").status_code == 401 and http.get("/health").status_code == 200
        right = openai.OpenAI(base_url="http://testserver/v1", api_key="let-me-in", http_client=http)
        assert ask(right, EASY).cascade["final_answer"] == "4"


# --- batching and admission -----------------------------------------------------------------
async def _concurrent(app, n, problem=HARD):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            c = openai.AsyncOpenAI(
                base_url="http://testserver/v1", api_key="x", http_client=http, max_retries=0
            )
            calls = [
                c.chat.completions.create(model=CASCADE, messages=[{"role": "user", "content": problem}])
                for _ in range(n)
            ]
            return await asyncio.gather(*calls, return_exceptions=True), app.state.server.engines


def test_concurrent_requests_share_engine_calls():
    results, engines = asyncio.run(_concurrent(app_for(delay=0.2), 8))
    assert all(r.choices[0].message.content.endswith("\\boxed{579}.") for r in results)
    small, large = engines[S].stats, engines[L].stats
    assert small.requests == 8 and small.batches < 8 and small.largest > 1
    assert large.requests == 8 and large.batches < 8
    assert max(t["batch_requests"] for r in results for t in r.cascade["tiers"]) > 1


def test_beyond_concurrency_and_queue_is_429():
    results, _ = asyncio.run(_concurrent(app_for(delay=0.3, max_concurrency=1, max_queue=1), 4))
    busy = [r for r in results if isinstance(r, openai.RateLimitError)]
    done = [r for r in results if not isinstance(r, Exception)]
    assert len(done) == 2 and len(busy) == 2 and busy[0].body["code"] == "E604"


# --- command line ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--engines", "gpu"], "--engines must be endpoints or local"),
        (["--endpoints", "missing.json"], "no such endpoints file"),
        (["--specs", "no/such/dir"], "no such folder"),
        (["--engines", "local", "--endpoints", "http://x/v1"], "not both"),
        (["--endpoints", "http://x/v1", "--timeout", "0"], "--timeout: Input should be greater than 0"),
    ],
)
def test_cli_usage_errors(args, message):
    done = subprocess.run(
        [sys.executable, "-m", "cascadec", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_cli_has_an_option_for_every_setting():
    from typer.testing import CliRunner

    from cascadec.cli import app
    from cascadec.serve.cli import FIELDS, _flag

    text = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200).output
    secret_names = {"auth_env", "upstream_key_env"}  # environment variable names, never options
    for name, field in FIELDS.items():
        if name not in secret_names:
            assert _flag(name) in text and field.description.split(":")[0] in text, name


def test_cli_broken_spec_stops_startup(tmp_path):
    (tmp_path / "bad.yaml").write_text("version: 1\nname: x\nstrategy: {cascade: [{model: 3B}]}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascadec",
            "serve",
            "--models",
            "zoo",
            "--specs",
            str(tmp_path),
            "--endpoints",
            "http://127.0.0.1:9/v1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "bad.yaml" in done.stderr and "Traceback" not in done.stderr, done.stderr
    json.dumps(done.stderr)


def test_local_engines_share_the_cores_out():
    """Engines side by side get a share each (full OpenMP teams spin against each other)."""
    from cascadec.serve.engines import cores_each

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cores_each(1) == cores
    assert cores_each(2) == max(1, cores // 2)
    assert cores_each(cores + 5) == 1  # never none


def test_metrics_cost_ratio_is_a_ratio_of_totals_not_a_mean_of_requests():
    import re

    long_answer = "3+3="  # its chosen sample is the 2nd (11 tokens): another reference cost
    answers = {
        **ANSWERS,
        (S, problem_id(long_answer)): ["6", "7", "7", "7"],
        (L, problem_id(long_answer)): ["6"],
    }
    with TestClient(app_for(answers)) as fresh:
        api = openai.OpenAI(
            base_url="http://testserver/v1", api_key="unused", http_client=fresh, max_retries=0
        )
        replies = [ask(api, HARD).cascade, ask(api, EASY).cascade, ask(api, long_answer).cascade]
        text = fresh.get("/metrics").text

    def value(name):
        # one strategy served: whatever its label (its key, or "other" for an unconfigured marker)
        return float(re.search(rf'^{name}{{strategy="[^"]*"}} (\S+)$', text, re.M).group(1))

    cost = sum(c["cost"] for c in replies)
    reference = sum(c["cost"] / c["cost_relative"] for c in replies)
    assert value("cascadec_cost_total") == pytest.approx(cost)
    assert value("cascadec_reference_cost_total") == pytest.approx(reference, rel=1e-5)
    assert value("cascadec_cost_ratio") == pytest.approx(cost / reference, rel=1e-5)
    mean = sum(c["cost_relative"] for c in replies) / len(replies)
    assert abs(value("cascadec_cost_ratio") - mean) > 1e-3  # they differ; the ratio of totals is the one


class _Failing(ReplayBackend):
    """A batch-only replay engine whose every generate raises ``error`` (its type, not its words,
    decides)."""

    capabilities = BATCH_ONLY  # the server feeds it through BatchStream: generate at each poll

    def __init__(self, bank, error):
        super().__init__(bank)
        self.error = error

    def generate(self, *a, **k):
        raise self.error


@pytest.mark.parametrize(
    "make, status",
    [
        (lambda e: e.UpstreamUnavailable("the worker went away"), 503),  # no telling word in its message
        (
            lambda e: e.BackendError("timed out while decoding a bad answer"),
            502,
        ),  # a 503's words, a 502's type
    ],
    ids=["unavailable", "failed"],
)
def test_502_or_503_is_decided_by_the_errors_type_not_its_words(make, status):
    from cascadec import errors

    catalog = Catalog("zoo", None, 64)
    bank = bank_from_answers(ANSWERS)
    backends = {m: _Failing(bank, make(errors)) for m in catalog.models}
    app = create_app(ServeConfig(models="zoo", equivalence="exact"), catalog=catalog, backends=backends)
    with TestClient(app) as http:
        r = http.post(
            "/v1/chat/completions", json={"model": CASCADE, "messages": [{"role": "user", "content": EASY}]}
        )
    assert r.status_code == status and r.json()["error"]["code"] == "E603", r.text
