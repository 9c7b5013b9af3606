"""`cascadec run`: replay runs, dry runs, and clear errors (exit 1 or 2, never a traceback)."""

import json
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cascadec.cli_run import register
from cascadec.plan import plan_to_json
from cascadec.runtime.backends import make_backend
from cascadec.runtime.backends.replay import write_bank
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier

MODELS = {"S": 1.5, "M": 7.0, "L": 72.0}


@pytest.fixture
def app():
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """test root"""

    register(app)
    return app


@pytest.fixture
def files(tmp_path):
    plan = make_plan(
        [strategy("c", [tier("S", 4, escalate_if="agreement < 0.75"), tier("L", 1, 0.0)])], MODELS
    )
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    rows = [{"id": f"p{i}", "problem": f"{i}+{i}=", "answer": str(2 * i)} for i in range(6)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = {}
    for i in range(6):
        answers[("S", f"p{i}")] = [str(2 * i)] * 4 if i % 2 else [str(2 * i), "0", "1", "2"]
        answers[("L", f"p{i}")] = [str(2 * i)]
    write_bank(bank_from_answers(answers), tmp_path / "bank.parquet")
    return tmp_path


def invoke(app, *args):
    result = CliRunner().invoke(app, ["run", *map(str, args)])
    assert "Traceback" not in result.output + result.stderr
    return result


def invoke_replay(app, root, *args, out=None, bank="bank.parquet"):
    """``cascadec run ARGS --out OUT --backend replay --bank ROOT/BANK`` (OUT: ROOT/out)."""
    return invoke(app, *args, "--out", out or root / "out", "--backend", "replay", "--bank", root / bank)


def test_replay_run_writes_results(app, files):
    out = files / "out"
    r = invoke_replay(
        app,
        files,
        files / "plan.json",
        "--data",
        files / "data.jsonl",
        "--equivalence",
        "exact",
        "--no-progress",
    )
    assert r.exit_code == 0, r.stderr
    assert "models" in r.stdout and "strategies" in r.stdout
    from cascadec.runtime.results import load_results

    problems = load_results(out)
    samples = load_results(out, samples=True)
    assert list(problems["id"]) == [f"p{i}" for i in range(6)] and problems["correct"].all()
    assert list(problems["tiers_used"]) == [2, 1, 2, 1, 2, 1]
    assert len(samples) == 6 * 4 + 3
    assert {
        "id",
        "strategy",
        "tier",
        "model",
        "round",
        "sample_index",
        "text",
        "answer",
        "num_tokens",
        "finish_reason",
        "mean_logprob",
    } <= set(samples.columns)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["plan_hash"].startswith("sha256:")
    assert manifest["totals"]["loads"] == {"S": 1, "L": 1} and manifest["totals"]["accuracy"] == 1.0
    assert json.loads((out / "plan.json").read_text())["hash"] == manifest["plan_hash"]
    assert isinstance(problems["tiers"].dtype, pd.ArrowDtype)  # nested, typed: no JSON in strings
    assert list(problems["models"].iloc[0]) == ["S", "L"]


def test_a_bank_directory_replays_like_its_parquet_file(app, files):
    """``--bank`` takes a bank as simulate and calibrate do: its file or its (run) directory."""
    args = (files / "plan.json", "--data", files / "data.jsonl", "--equivalence", "exact", "--no-progress")
    (files / "bankdir").mkdir()
    (files / "bank.parquet").rename(files / "bankdir" / "samples.parquet")
    by_dir = invoke_replay(app, files, *args, bank="bankdir", out=files / "by_dir")
    assert by_dir.exit_code == 0, by_dir.stderr
    by_file = invoke_replay(app, files, *args, bank="bankdir/samples.parquet", out=files / "by_file")
    assert by_file.exit_code == 0, by_file.stderr
    from cascadec.runtime.results import load_results

    a, b = load_results(files / "by_dir", samples=True), load_results(files / "by_file", samples=True)
    assert len(a) == 6 * 4 + 3 and list(a["text"]) == list(b["text"])
    empty = invoke_replay(app, files, *args, bank="nowhere", out=files / "none")
    assert empty.exit_code == 2 and "no such sample bank" in empty.stderr
    (files / "emptydir").mkdir()
    empty = invoke_replay(app, files, *args, bank="emptydir", out=files / "none")
    assert empty.exit_code == 2 and "no such sample bank" in empty.stderr


def test_schedule_barrier_gives_the_same_results(app, files):
    from cascadec.runtime.results import load_results, read_manifest

    args = (files / "plan.json", "--data", files / "data.jsonl", "--equivalence", "exact", "--no-progress")
    assert invoke_replay(app, files, *args).exit_code == 0
    r = invoke_replay(app, files, *args, "--schedule", "barrier", out=files / "barrier")
    assert r.exit_code == 0, r.stderr
    cols = [c for c in load_results(files / "out").columns if c != "seconds"]
    pd.testing.assert_frame_equal(load_results(files / "barrier")[cols], load_results(files / "out")[cols])
    assert read_manifest(files / "barrier").run.schedule == "barrier"
    assert read_manifest(files / "out").run.schedule == "continuous"
    bad = invoke_replay(app, files, *args, "--schedule", "eager", out=files / "bad")
    assert bad.exit_code == 2 and "--schedule must be continuous or barrier" in bad.stderr


def test_limit(app, files):
    out = files / "out"
    r = invoke_replay(
        app,
        files,
        files / "plan.json",
        "--data",
        files / "data.jsonl",
        "--limit",
        "2",
        "--equivalence",
        "exact",
    )
    assert r.exit_code == 0, r.stderr
    assert len(pd.read_parquet(out / "problems.parquet")) == 2


def test_dry_run_loads_nothing(app, files):
    r = invoke(app, files / "plan.json", "--data", files / "data.jsonl", "--dry-run", "--backend", "vllm")
    assert r.exit_code == 0, r.stderr
    assert "no model loaded" in r.stdout
    for word in ("strategies", "tiers", "models", "worst case", "reaches", "samples", "cost"):
        assert word in r.stdout
    assert not (files / "out").exists()


def test_dry_run_numbers(files):
    from cascadec.api import prepare
    from cascadec.runtime.routing import breakdown

    prepared = prepare(str(files / "plan.json"), pd.read_json(files / "data.jsonl", lines=True))
    b = breakdown(prepared)
    assert b["strategies"].to_dict("records") == [{"strategy": "c", "problems": 6}]
    tiers = b["tiers"].set_index("model")
    assert tiers.loc["S", "samples"] == 24 and tiers.loc["L", "samples"] == 6
    assert tiers.loc["S", "tokens"] == 24 * 64
    assert tiers.loc["L", "cost"] == pytest.approx(6 * 64 * 1.0) and tiers.loc["L", "starts"] == 0
    assert list(b["models"]["model"]) == ["S", "L"]


HAS_OPENAI = find_spec("openai") is not None
OPENAI = "--data {d}/data.jsonl --out {d}/o --backend openai --endpoints"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--data", "{d}/missing.jsonl", "--out", "{d}/o"], 2, "no such data file"),
        (["--out", "{d}/o"], 2, "--data FILE is required"),
        (["--data", "{d}/data.jsonl"], 2, "--out DIR is required"),
        (["--data", "{d}/data.jsonl", "--out", "{d}/o", "--backend", "tpu"], 2, "unknown --backend"),
        (f"{OPENAI} {{d}}/no.json".split(), 2, "no such endpoints file"),
        pytest.param(
            f"{OPENAI} http://127.0.0.1:9/v1".split(),
            1,
            "cannot reach http://127.0.0.1:9/v1",
            marks=pytest.mark.skipif(not HAS_OPENAI, reason="the openai extra is not installed"),
        ),
        (["--data", "{d}/data.jsonl", "--out", "{d}/o", "--backend", "replay"], 2, "needs --bank"),
        (["--data", "{d}/data.jsonl", "--out", "{d}/o", "--column", "nope"], 2, "no strategy column 'nope'"),
        (["--data", "{d}/bad.jsonl", "--out", "{d}/o"], 1, "E500"),
    ],
)
def test_usage_and_data_errors(app, files, args, code, message):
    (files / "bad.jsonl").write_text('{"text": "no problem column"}\n')
    r = invoke(app, files / "plan.json", *[a.format(d=files) for a in args])
    assert r.exit_code == code, r.output + r.stderr
    assert message in r.stderr


def test_plan_of_another_schema_version(app, files):
    plan = json.loads((files / "plan.json").read_text())
    plan["schema_version"] = 2
    (files / "v2.json").write_text(json.dumps(plan))
    r = invoke(app, files / "v2.json", "--data", files / "data.jsonl", "--out", files / "o")
    assert r.exit_code == 1 and "E402" in r.stderr
    assert not (files / "o").exists()  # nothing written, nothing loaded


def test_missing_plan_file(app, files):
    r = invoke(app, files / "nope.json", "--data", files / "data.jsonl", "--out", files / "o")
    assert r.exit_code == 2 and "no such spec or plan file" in r.stderr


def test_bank_too_small_is_a_clear_error(app, files):
    write_bank(bank_from_answers({("S", "p0"): ["0"]}), files / "small.parquet")
    r = invoke_replay(app, files, files / "plan.json", "--data", files / "data.jsonl", bank="small.parquet")
    assert r.exit_code == 1 and "E501" in r.stderr and "lacks samples" in r.stderr


def test_factory():
    assert make_backend("ray", replicas=2).replicas == 2  # Ray itself is imported at load time
    with pytest.raises(Exception, match="not JSON"):
        make_backend("openai", endpoints=Path(__file__))
    with pytest.raises(Exception, match="needs a sample bank"):
        make_backend("replay")
    if find_spec("cascadec.runtime.backends.vllm_offline") is None:
        with pytest.raises(Exception, match="E501"):
            make_backend("vllm")


QWEN = {size: f"Qwen/Qwen2.5-Math-{size}-Instruct" for size in ("1.5B", "7B", "72B")}


@pytest.fixture
def qwen_files(tmp_path):
    """Problems with per-row markers, and a bank of the Qwen registry's models."""
    markers = ["mv_1.5B_k4_t0.70", "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0", "7B"]
    rows, answers = [], {}
    for i in range(6):
        gold = str(i)
        rows.append({"id": f"p{i}", "problem": f"What is {i}?", "answer": gold, "marker": markers[i % 3]})
        answers[(QWEN["1.5B"], f"p{i}")] = [gold] * 4 if i % 2 else [gold, "a", "b", "c"]
        answers[(QWEN["7B"], f"p{i}")] = [gold] * 4
        answers[(QWEN["72B"], f"p{i}")] = [gold]
    pd.DataFrame(rows).to_csv(tmp_path / "data.csv", index=False)
    write_bank(bank_from_answers(answers), tmp_path / "bank.parquet")
    return tmp_path


def test_per_row_markers_from_a_column(app, qwen_files):
    out = qwen_files / "out"
    r = invoke_replay(
        app, qwen_files, "--data", qwen_files / "data.csv", "--column", "marker", "--equivalence", "exact"
    )
    assert r.exit_code == 0, r.stderr
    res = pd.read_parquet(out / "problems.parquet")
    assert (
        list(res["strategy"])
        == ["mv_1.5B_k4_t0.7", "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0", "7B"] * 2
    )
    assert res["correct"].all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["loads"] == {QWEN["1.5B"]: 1, QWEN["7B"]: 1}


def test_marker_option(app, qwen_files):
    out = qwen_files / "out"
    marker = "mv_cascade_1.5B_k4_t0.7_72B_k1_t0.0"
    r = invoke_replay(
        app, qwen_files, "--marker", marker, "--data", qwen_files / "data.csv", "--equivalence", "exact"
    )
    assert r.exit_code == 0, r.stderr
    res = pd.read_parquet(out / "problems.parquet")
    assert list(res["tiers_used"]) == [2, 1, 2, 1, 2, 1]


def test_bad_marker_is_a_located_error(app, qwen_files):
    r = invoke(
        app,
        "--marker",
        "mv_cascade_1.5B_k0_t0.7_72B_k1_t0.0",
        "--data",
        qwen_files / "data.csv",
        "--out",
        qwen_files / "o",
    )
    assert r.exit_code == 1 and "E102" in r.stderr and not (qwen_files / "o").exists()


def test_spec_dry_run_shows_adaptive_routing(app, qwen_files, tmp_path):
    from cascadec.resources import data_dir

    spec = data_dir("specs") / "tuned_cascade.yaml"
    frame = pd.read_csv(qwen_files / "data.csv")
    frame["difficulty"] = [0.1, 0.5, 0.9, 0.2, 0.6, 0.95]
    frame.to_csv(tmp_path / "d.csv", index=False)
    r = invoke(app, spec, "--data", tmp_path / "d.csv", "--dry-run")
    assert r.exit_code == 0, r.stderr
    from cascadec.api import prepare
    from cascadec.runtime.routing import breakdown

    tiers = breakdown(prepare(str(spec), frame))["tiers"].set_index("tier")
    assert tiers.loc[0, "starts"] == 4 and tiers.loc[1, "starts"] == 2  # k=8 skips the 1.5B tier


def test_unwritable_out_is_a_usage_error(app, files):
    (files / "afile").write_text("x")
    r = invoke_replay(
        app, files, files / "plan.json", "--data", files / "data.jsonl", out=files / "afile" / "out"
    )
    assert r.exit_code == 2 and "error:" in r.stderr
