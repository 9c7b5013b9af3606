"""Hostile and mistaken inputs (issue 12): each is one clear, located error, exit 1 or 2, fast.

Every case runs the real console entry point in a subprocess (what a user runs), with a time
limit: no hang, no traceback, no internal error (exit 3), no secret echoed, nothing modified.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascadec.plan import plan_to_json
from cascadec.runtime.testing import make_plan, strategy, tier

SECRET = "sk-live-0123456789abcdef"
PLAN = make_plan(
    [strategy("c", [tier("S", 4, escalate_if="agreement < 0.75"), tier("L", 1, 0.0)])], {"S": 1.5, "L": 72}
)


def cascadec(*args, stdin: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "cascadec", *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out and "internal error" not in out, out
    assert done.returncode in (1, 2), (done.returncode, out)
    assert SECRET not in out
    done.text = out  # type: ignore[attr-defined]
    return done


def plan_dict() -> dict:
    return json.loads(plan_to_json(PLAN))


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "problem": "1+1=", "answer": "2"}) + "\n" for i in range(3))
    )
    return path


# --- plans are verified, never trusted -------------------------------------------------------
def test_plan_without_hash_is_refused(tmp_path, data):
    d = plan_dict()
    d.pop("hash")
    (tmp_path / "p.json").write_text(json.dumps(d))
    for args in (("lint", tmp_path / "p.json"), ("run", tmp_path / "p.json", "--data", data, "--dry-run")):
        assert "E401 plan has no hash" in cascadec(*args).text


def test_plan_k_beyond_bound_is_refused(tmp_path, data):
    d = plan_dict()
    d["strategies"][0]["tiers"][0]["k"] = 10**9
    (tmp_path / "p.json").write_text(json.dumps(d))
    r = cascadec("run", tmp_path / "p.json", "--data", data, "--dry-run")
    assert "less than or equal to 1024" in r.text and "tiers.0.k" in r.text


def test_plan_with_a_valid_hash_still_passes_static_checks(tmp_path, data):
    """A hash proves integrity, not soundness: k > 1 at T = 0 with a recomputed hash is E104."""
    from cascadec.plan import Plan, content_hash

    d = plan_dict()
    d["strategies"][0]["tiers"][0]["temperature"] = 0.0
    d["hash"] = content_hash(Plan.model_validate({**d, "hash": ""}))
    (tmp_path / "p.json").write_text(json.dumps(d))
    for args in (("lint", tmp_path / "p.json"), ("run", tmp_path / "p.json", "--data", data, "--dry-run")):
        assert "E104" in cascadec(*args).text


# --- nesting, special files, sizes -------------------------------------------------------------
def test_deep_nesting_is_located_and_lint_goes_on(tmp_path):
    (tmp_path / "deep.yaml").write_text("version: 1\nstrategy: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "deep.json").write_text('{"strategies": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "ok.txt").write_text("mv_1.5B_k0_t0.7\n")
    r = cascadec("lint", tmp_path / "deep.yaml", tmp_path / "deep.json", tmp_path / "ok.txt")
    assert "deep.yaml:2:" in r.text and "E204" in r.text
    assert "deep.json:1:1: E401" in r.text and "nested deeper" in r.text
    assert "ok.txt:1:10: E102" in r.text  # the other files are still linted
    r = cascadec("compile", tmp_path / "deep.yaml")
    assert "E204" in r.text


def test_deep_registry(tmp_path):
    (tmp_path / "reg.yaml").write_text("models: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "s.yaml").write_text(
        f"version: 1\nmodels: {tmp_path / 'reg.yaml'}\nstrategy: {{mv: {{model: 1.5B, k: 4, temperature: 0.7}}}}\n"
    )
    assert "E300" in cascadec("compile", tmp_path / "s.yaml").text


def test_fifo_never_blocks(tmp_path, data):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    for name in ("markers.txt", "plan.json", "table.csv", "reg.yaml"):
        os.mkfifo(tmp_path / name)
    assert (
        "not a regular file" in cascadec("lint", fifo, tmp_path / "markers.txt", tmp_path / "table.csv").text
    )
    assert "not a regular file" in cascadec("compile", fifo).text
    assert "not a regular file" in cascadec("run", tmp_path / "plan.json", "--data", data, "--dry-run").text
    r = cascadec("compile", "--marker", "mv_1.5B_k4_t0.7", "--models", tmp_path / "reg.yaml")
    assert "reg.yaml" in r.text


# --- no secrets -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [
        f"OPENAI_API_KEY={SECRET}\nfoo: [\n",  # not YAML
        f"api_key: {SECRET}\n",  # YAML, not a registry
        f"models:\n  - id: x\n    params: 1\n    {SECRET}: 1\n",  # a registry with a strange key
        f"- {SECRET}\n",
        f'{{"token": "{SECRET}"}}',
    ],
)
def test_registry_errors_never_quote_the_file(tmp_path, content):
    (tmp_path / "creds").write_text(content)
    (tmp_path / "s.yaml").write_text(
        f"version: 1\nmodels: {tmp_path / 'creds'}\nstrategy: {{mv: {{model: 1.5B, k: 4, temperature: 0.7}}}}\n"
    )
    r = cascadec("compile", tmp_path / "s.yaml")
    assert "E300" in r.text
    r = cascadec("lint", "--models", tmp_path / "creds", tmp_path / "s.yaml")
    assert "creds" in r.text


# --- markers: bounds the same in lint and compile ------------------------------------------------
@pytest.mark.parametrize(
    "marker, code, column",
    [
        ("mv_1.5B_k100000_t0.7", "E102", 10),  # above MAX_K: lint once accepted what compile crashed on
        ("mv_1.5B_k" + "9" * 5000 + "_t0.7", "E100", 1001),  # too long before anything else
        ("mv_1.5B_k" + "9" * 40 + "_t0.7", "E102", 10),  # digits beyond any bound
        ("mv_1.5В_k4_t0.7", "E100", 7),  # Cyrillic В: the caret on the look-alike, not before it
        ("mv_1.5B_k４_t0.7", "E100", 10),
    ],
)
def test_marker_bounds_agree_in_lint_and_compile(tmp_path, marker, code, column):
    (tmp_path / "m.txt").write_text(marker + "\n", encoding="utf-8")
    assert f"m.txt:1:{column}: {code}" in cascadec("lint", tmp_path / "m.txt").text
    assert f":1:{column}: {code}" in cascadec("compile", "--marker", marker).text


def test_negative_zero_temperature_prints_canonically():
    import cascadec as api

    assert str(api.parse_marker("mv_1.5B_k1_t-0.0")) == "mv_1.5B_k1_t0.0"


def test_huge_markers_are_fast(tmp_path, data):
    (tmp_path / "big.txt").write_text("mv_1.5B_k4_t0.7" * 700_000 + "\n")  # 10 MB, one line
    assert "E100 marker is" in cascadec("lint", tmp_path / "big.txt").text
    cell = "mv_cascade_" + "_".join(["1.5B_k4_t0.7"] * 25_000)  # 300 KB in a table column
    rows = [
        {"id": "a", "problem": "1+1=", "strategy": cell},
        {"id": "b", "problem": "2+2=", "strategy": "7B"},
    ]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = cascadec("run", "--column", "strategy", "--data", tmp_path / "t.jsonl", "--dry-run")
    assert "E100 marker is" in r.text and len(r.text) < 2000


def test_a_terminal_that_is_not_utf8(tmp_path):
    (tmp_path / "m.txt").write_text("mv_1.5В_k4_t0.7\n", encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    done = subprocess.run(
        [sys.executable, "-m", "cascadec", "lint", str(tmp_path / "m.txt")],
        capture_output=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 1 and b"E100 unexpected character '\\u0412'" in done.stdout, done.stderr


def test_trust_remote_code_is_off_unless_the_registry_says_so(tmp_path):
    from cascadec.compiler import compile_marker
    from cascadec.plan import plan_to_json
    from cascadec.registry import load_registry
    from cascadec.runtime.backends.vllm_offline import worker_config

    plain, _ = compile_marker("mv_1.5B_k4_t0.7")
    assert all(not m.trust_remote_code for m in plain.models.values())
    assert "trust_remote_code" not in plan_to_json(plain)  # plans without it keep their hash
    (tmp_path / "r.yaml").write_text(
        "models:\n  - {id: org/m, aliases: [1B], params: 1, trust_remote_code: true}\n"
    )
    trusted, _ = compile_marker("mv_1B_k4_t0.7", load_registry(tmp_path / "r.yaml"))
    model = trusted.models["org/m"]
    assert model.trust_remote_code and '"trust_remote_code": true' in plan_to_json(trusted)
    assert worker_config(model)["model"]["trust_remote_code"] is True


def test_outputs_never_replace_inputs_or_user_files(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nstrategy: {mv: {model: 1.5B, k: 4, temperature: 0.7}}\n")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    data = tmp_path / "problems.jsonl"
    data.write_text('{"id": "a", "problem": "1+1="}\n')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "own input" in cascadec("compile", spec, "-o", spec).text
    assert "not written by cascadec" in cascadec("compile", spec, "-o", notes).text
    assert "not written by cascadec" in cascadec("zoo", "sample", "--n", "2", "--out", data).text
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
