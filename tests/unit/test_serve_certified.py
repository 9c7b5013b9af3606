"""Served = certified (issue 23, item 1): ``serve`` runs exactly the plan ``run`` runs.

Every shipped spec the zoo can run is served over replay engines and run with the replay backend
on the same bank, problem for problem: same start tier, same tiers, same answer, same cost. A
spec that routes by a data column (``adaptive_k.column: bucket``) takes it from the request as a
typed number field, refuses a request without it (400, E607), never silently starts at tier 0.
"""

import random
from pathlib import Path

import pandas as pd
import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
TestClient = pytest.importorskip("fastapi.testclient").TestClient

import cascadec
from cascadec.compiler import compile_spec
from cascadec.compiler.context import resolve_registry
from cascadec.errors import CascadecError
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.testing import bank_from_answers, sample_text
from cascadec.serve import ServeConfig, create_app
from cascadec.serve.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]
S, M, L = "cascadec-zoo/arith-0.034M", "cascadec-zoo/arith-0.084M", "cascadec-zoo/arith-1.1M"


def zoo_specs() -> list[Path]:
    """The shipped specs the zoo registry compiles (the others name Qwen models)."""
    out = []
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        try:
            compile_spec(path, resolve_registry("zoo"))
        except CascadecError:
            continue
        out.append(path)
    return out


def bank_and_problems(n: int = 36) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples whose logprobs make some problems escalate, others stop; every bucket 0-5."""
    rng = random.Random(23)
    rows, problems = [], []
    for i in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        problems.append({"id": f"p{i}", "problem": f"{a}+{b}=", "answer": str(a + b), "bucket": i % 6})
        for model in (S, M, L):
            lp = -0.001 if model == L else rng.choice([-0.001, -0.02, -0.2])
            answer = str(a + b) if model == L or rng.random() < 0.75 else str(a + b + 1)
            text, finish = sample_text(answer)
            rows.append(
                {
                    "model": model,
                    "problem_id": f"p{i}",
                    "sample_index": 0,
                    "text": text,
                    "num_tokens": 10 + i % 3,
                    "finish_reason": finish,
                    "logprobs": [lp] * (10 + i % 3),
                    "confidences": None,
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(problems)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    specs = zoo_specs()
    assert {p.name for p in specs} >= {"demo.yaml", "confidence_cascade.yaml"}
    folder = tmp_path_factory.mktemp("specs")
    for p in specs:
        (folder / p.name).write_bytes(p.read_bytes())
    bank, problems = bank_and_problems()
    catalog = Catalog("zoo", folder)
    backends = {m: ReplayBackend(bank) for m in catalog.models}
    app = create_app(
        ServeConfig(models="zoo", specs=folder, equivalence="exact"), catalog=catalog, backends=backends
    )
    with TestClient(app) as http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="-", http_client=http, max_retries=0)
        yield specs, bank, problems, client, http


def ask(client, text, model, **extra):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], extra_body=extra or None
    )


def test_every_zoo_spec_is_served_as_it_runs(served):
    specs, bank, problems, client, _ = served
    routed = 0
    for path in specs:
        ran = cascadec.run(
            path, problems, "replay", bank=bank, models="zoo", equivalence="exact", progress=False
        )
        name = ran["cascade_strategy"].iloc[0]
        starts = set()
        for row, problem in zip(ran.itertuples(), problems.itertuples(), strict=True):
            r = ask(client, problem.problem, name, problem_id=problem.id, bucket=problem.bucket)
            c = r.cascade
            path_tiers = [step["tier"] for step in row.cascade_path]
            where = f"{path.name} {problem.id} (bucket {problem.bucket})"
            assert c["strategy"] == name, where
            assert c["tiers_run"] == path_tiers, where
            assert c["start_tier"] == path_tiers[0], where
            assert [t["model"] for t in c["tiers"]] == list(row.cascade_models), where
            assert c["final_answer"] == row.cascade_final_answer, where
            assert c["stop_reason"] == row.cascade_stop_reason, where
            assert c["samples"] == row.cascade_samples, where
            assert c["cost"] == pytest.approx(row.cascade_cost, rel=1e-9), where
            assert c["data"] == {"bucket": float(problem.bucket)}, where
            starts.add(c["start_tier"])
        routed += len(starts) > 1
    assert routed >= 2  # demo and confidence_cascade start buckets 4-5 past tier 0


def test_a_routed_spec_without_its_column_is_refused_not_rerouted(served):
    _, _, problems, client, http = served
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, "2+2=", "demo_cascade")
    body = err.value.body
    assert body["code"] == "E607" and body["param"] == "bucket" and "bucket" in body["message"]
    # difficulty is a column too, but not the one demo routes by: still refused
    with pytest.raises(openai.BadRequestError):
        ask(client, "2+2=", "demo_cascade", difficulty=5)
    # a number, finite: never a string, a bool or null
    for bad in ("5", True, [5]):
        r = http.post(
            "/v1/chat/completions",
            json={"model": "demo_cascade", "messages": [{"role": "user", "content": "1+1="}], "bucket": bad},
        )
        assert r.status_code == 422 and r.json()["error"]["param"] == "bucket", bad
    # a strategy that reads no column ignores none it is given: a marker with a bucket runs
    assert ask(client, "1+1=", "0.034M", problem_id="p0", bucket=5).cascade["data"] == {}


def test_a_column_no_request_can_carry_stops_startup(tmp_path):
    spec = (ROOT / "specs" / "demo.yaml").read_text().replace("column: bucket", "column: seed")
    (tmp_path / "demo.yaml").write_text(spec)
    with pytest.raises(CascadecError) as err:
        create_app(ServeConfig(models="zoo", specs=tmp_path, equivalence="exact"), backends={})
    assert err.value.code == "E607" and "seed" in err.value.message


def test_prompt_tokens_count_the_prompt_once_not_per_sample():
    bank = bank_from_answers({(S, "q"): ["4"] * 4})
    app = create_app(
        ServeConfig(models="zoo", equivalence="exact"),
        backends={m: ReplayBackend(bank) for m in (S, M, L)},
    )
    with TestClient(app) as http:
        client = openai.OpenAI(base_url="http://testserver/v1", api_key="-", http_client=http, max_retries=0)
        one = ask(client, "2+2=", "0.034M", problem_id="q")
        four = ask(client, "2+2=", "mv_0.034M_k4_t0.7", problem_id="q")
    assert one.usage.prompt_tokens > 0 and four.cascade["samples"] == 4
    assert four.usage.prompt_tokens == one.usage.prompt_tokens  # as OpenAI counts n > 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--engines", "replay"], "--engines replay takes its samples from --bank"),
        (["--bank", "bank"], "--engines replay takes its samples from --bank"),
        (["--engines", "replay", "--bank", "no/such/bank"], "no such sample bank"),
    ],
)
def test_replay_engines_usage_errors(args, message):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cascadec", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
