"""``cascadec serve`` for real: the official OpenAI client -> cascadec serve (uvicorn, a
subprocess) -> real ``vllm serve`` endpoints of two zoo models (the session's pair, started by
``runtime/launch_vllm_serve.sh``: see conftest.py), all on loopback.
"""

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_helpers import free_port, wait_healthy

from cascadec.zoo.task import sample_problems

pytestmark = pytest.mark.integration
openai = pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]
CASCADE = "mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0"
LARGE = "cascadec-zoo/arith-1.1M"


@pytest.fixture(scope="module")
def endpoints(vllm_serve):
    return vllm_serve  # the session's vllm serve pair (conftest.py)


@pytest.fixture(scope="module")
def server(endpoints, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [sys.executable, "-m", "cascadec", "serve", "--models", "zoo", "--endpoints", str(endpoints)]
    command += ["--port", str(port), "--batch-window-ms", "20"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def problems():
    return sample_problems(24, 4242)


def chat(client, model, problem, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": problem}], **kw)


def test_cascade_answers_correctly_escalates_and_batches(client, problems):
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda p: chat(client, CASCADE, p["problem"]), problems))
    right = 0
    for p, r in zip(problems, responses, strict=True):
        c = r.cascade
        right += c["final_answer"] == p["answer"]
        assert f"\\boxed{{{c['final_answer']}}}" in r.choices[0].message.content
        assert r.usage.completion_tokens == sum(t["tokens"] for t in c["tiers"]) > 0
        assert r.usage.prompt_tokens > 0
    assert right >= 0.9 * len(problems)
    escalated = [r.cascade["escalated"] for r in responses]
    assert any(escalated) and not all(escalated), "easy problems stop at tier 0, hard ones escalate"
    for r in responses:
        if r.cascade["escalated"]:
            assert (
                r.cascade["tiers"][-1]["model"] == LARGE and r.cascade["tiers"][0]["decision"] == "escalate"
            )
    assert max(t["batch_requests"] for r in responses for t in r.cascade["tiers"]) > 1, (
        "concurrent asks batched"
    )


def test_plain_greedy_is_the_largest_models_own_answer(client, endpoints, problems):
    url = json.loads(endpoints.read_text())[LARGE]
    direct = openai.OpenAI(base_url=url, api_key="EMPTY")
    for p in problems[:4]:
        r = client.completions.create(model="1.1M", prompt=p["problem"])
        same = direct.completions.create(model=LARGE, prompt=p["problem"], temperature=0, max_tokens=128)
        assert r.choices[0].text == same.choices[0].text
        assert r.cascade["kind"] == "plain" and r.cascade["cost_relative"] == pytest.approx(1.0)


def test_vote_is_one_tier_of_k_samples(client, problems):
    r = chat(client, "mv_0.034M_k4_t0.7", problems[0]["problem"])
    assert r.cascade["tiers_used"] == 1 and r.cascade["samples"] == 4
    assert sum(r.cascade["tiers"][0]["votes"].values()) <= 4


def test_stream_of_the_final_tier_as_generated(client, problems):
    hard = max(problems, key=lambda p: p["difficulty"])["problem"]
    whole = chat(client, CASCADE, hard)
    chunks = list(chat(client, CASCADE, hard, stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
    assert "".join(deltas) == whole.choices[0].message.content, "same seeds: same answer streamed or not"
    if whole.cascade["escalated"]:
        assert final.cascade["streamed"] and len(deltas) > 1, "the greedy last tier streams token by token"
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_malformed_marker_is_a_400_naming_the_problem(client):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, "mv_cascade_0.034M_k4_t0.7_1.1M_k1_t3.5", "1+1=")
    assert e.value.body["code"] == "E103" and "^" in e.value.body["message"]


def test_metrics_count_the_strategy(server, client, problems):
    chat(client, CASCADE, problems[0]["problem"])
    text = urllib.request.urlopen(f"{server}/metrics").read().decode()
    assert 'cascadec_requests_total{status="200",strategy="other"}' in text
    assert 'cascadec_engine_batch_requests_count{model="cascadec-zoo/arith-0.034M"}' in text


def test_same_answers_as_cascadec_run(client, endpoints, problems):
    import pandas as pd

    import cascadec
    from cascadec.runtime.backends.openai_http import OpenAIBackend

    few = problems[:10]
    backend = OpenAIBackend(endpoints=endpoints)
    try:
        ran = cascadec.run(CASCADE, pd.DataFrame(few), backend=backend, models="zoo", progress=False)
    finally:
        backend.close()
    for p, row in zip(few, ran.itertuples(), strict=True):
        r = chat(client, CASCADE, p["problem"], extra_body={"problem_id": p["id"]})
        assert r.cascade["final_answer"] == row.cascade_final_answer
        assert (r.cascade["samples"], r.usage.completion_tokens) == (row.cascade_samples, row.cascade_tokens)
