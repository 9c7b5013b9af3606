"""cascadec bank import: the open per-sample format, bad rows, pricing, the re-grading report."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.errors import DataError, RunDirError
from cascadec.sim.bank import load_bank
from cascadec.sim.bank_import import import_bank

runner = CliRunner()

PROBLEMS = [
    {"id": "a", "question": "What is 2 + 3?", "answer": "5"},
    {"id": "b", "question": "What is 10 / 4?", "answer": "2.5"},
    {"id": "c", "question": "What is 7 * 6?", "answer": "42"},
]
PRICED = """\
version: 1
models:
  - id: org/small
    aliases: [small, 1S]
    price: {input: 1.0, output: 2.0, source: test, date: "2025-01-01"}
  - id: org/big
    aliases: [big, 9B]
    price: {input: 10.0, output: 30.0, source: test, date: "2025-01-01"}
"""


def rows() -> list[dict]:
    """Two models on three problems: small 2 samples each, big 1 (greedy)."""
    out = []
    for pid, right, wrong in (("a", "5", "6"), ("b", "2.5", "3"), ("c", "42", "41")):
        out.append(
            {
                "id": pid,
                "model": "small",
                "text": f"So it is {right}. The answer is {right}.",
                "temperature": 0.7,
                "completion_tokens": 10,
                "prompt_tokens": 20,
                "score": 0.9,
                "logprobs": [-0.1, -0.2],
            }
        )
        out.append(
            {
                "id": pid,
                "model": "small",
                "text": f"The answer is \\boxed{{{wrong}}}",
                "temperature": 0.7,
                "completion_tokens": 12,
                "prompt_tokens": 20,
                "score": 0.2,
                "logprobs": [-1.0],
            }
        )
        out.append({"id": pid, "model": "big", "answer": right, "temperature": 0.0, "cost": 0.5})
    return out


@pytest.fixture(autouse=True)
def grade_cache(tmp_path, monkeypatch):
    """Each test its own grading cache (never the user's)."""
    monkeypatch.setenv("CASCADEC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def files(tmp_path):
    pd.DataFrame(PROBLEMS).to_json(tmp_path / "problems.jsonl", orient="records", lines=True)
    (tmp_path / "models.yaml").write_text(PRICED)
    with open(tmp_path / "outputs.jsonl", "w") as fh:
        for r in rows():
            fh.write(json.dumps(r) + "\n")
    return tmp_path


def run(files, out="bank", **kw):
    kw.setdefault("models", str(files / "models.yaml"))
    return import_bank([files / "outputs.jsonl"], data=files / "problems.jsonl", out=files / out, **kw)


def test_open_format_round_trip(files):
    result = run(files)
    bank = load_bank(files / "bank")
    assert len(bank) == 9 and set(bank["model"]) == {"org/small", "org/big"}
    small = bank[bank["model"] == "org/small"].sort_values(["problem_id", "sample_index"])
    assert small["sample_index"].tolist() == [0, 1] * 3  # file order per (problem, model, temperature)
    assert small["logprobs"].iloc[0].tolist() == [-0.1, -0.2]
    big = bank[bank["model"] == "org/big"]
    assert big["text"].tolist()[0] == "\\boxed{5}" and big["tokens_estimated"].all()
    assert big["cost"].tolist() == [0.5] * 3  # recorded costs kept
    # priced: prompt tokens x input + completion tokens x output (per token)
    assert small["cost"].iloc[0] == pytest.approx(20 * 1e-6 + 10 * 2e-6)
    assert small["score"].tolist()[:2] == [0.9, 0.2]
    assert small["correct"].tolist() == [True, False] * 3 and big["correct"].all()
    models = {m["model"]: m for m in result.report["models"]}
    assert models["org/small"]["accuracy"] == 0.5 and models["org/big"]["accuracy"] == 1.0
    assert models["org/big"]["tokens_estimated"] == 1.0 and models["org/small"]["tokens_estimated"] == 0.0
    assert json.loads((files / "bank" / "import.json").read_text())["samples"] == 9


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_csv_and_parquet_give_the_same_bank(files, suffix):
    run(files, out="ref")
    frame = pd.DataFrame(rows())
    if suffix == "csv":
        frame["logprobs"] = frame["logprobs"].map(lambda v: json.dumps(v) if isinstance(v, list) else "")
        frame.to_csv(files / "outputs.csv", index=False)
    else:
        frame.to_parquet(files / "outputs.parquet")
    import_bank(
        [files / f"outputs.{suffix}"],
        data=files / "problems.jsonl",
        out=files / "b",
        models=str(files / "models.yaml"),
    )
    cols = [
        "model",
        "problem_id",
        "sample_index",
        "text",
        "num_tokens",
        "temperature",
        "cost",
        "score",
        "correct",
    ]
    ref, got = load_bank(files / "ref"), load_bank(files / "b")
    pd.testing.assert_frame_equal(ref[cols], got[cols])


def test_generated_registry_and_estimates(files):
    (files / "outputs.jsonl").write_text(
        json.dumps({"id": "a", "model": "org/m-7B", "text": "x" * 9 + " The answer is 5."}) + "\n"
    )
    result = run(files, models=None)
    reg = (files / "bank" / "models.yaml").read_text()
    assert "WARNING" in reg and "placeholder" in reg and "params: 7000000000.0" in reg and "7B" in reg
    bank = load_bank(files / "bank")
    assert bank["num_tokens"].tolist() == [math.ceil(26 / 4)] and bank["tokens_estimated"].all()
    assert bank["prompt_tokens"].tolist() == [math.ceil(len("What is 2 + 3?") / 4)]
    assert result.report["estimation"]["completion_tokens_estimated"] == 1.0


def test_generated_registry_prices_from_recorded_costs(files):
    lines = [
        {"id": "a", "model": "api", "text": "The answer is 5.", "cost": 0.003, "completion_tokens": 100},
        {"id": "b", "model": "api", "text": "The answer is 3.", "cost": 0.001, "completion_tokens": 100},
    ]
    (files / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    run(files, models=None)
    from cascadec.registry import load_registry

    entry = load_registry(files / "bank" / "models.yaml").resolve("api")
    assert entry.price.output == pytest.approx(1e6 * 0.004 / 200)


BAD = [
    ({"id": "zz"}, "unknown problem id 'zz'"),
    ({"cost": -1.0}, "'cost' must be a number in [0"),
    ({"model": "huge"}, "model 'huge' is not in the registry"),
    ({"completion_tokens": 1.5}, "'completion_tokens' must be an integer"),
    ({"temperature": 3}, "'temperature'"),
    ({"text": None, "answer": None}, "a sample needs a text or an answer"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_rows_are_refused_and_nothing_is_written(files, change, message):
    lines = rows()
    lines[4] = {**lines[4], **change}
    (files / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(DataError) as err:
        run(files)
    assert err.value.code == "E500" and message in str(err.value)
    assert "outputs.jsonl: row 4" in str(err.value)
    assert sorted(p.name for p in files.iterdir()) == ["models.yaml", "outputs.jsonl", "problems.jsonl"]


def test_nan_cost_duplicates_and_long_texts_are_refused(files, monkeypatch):
    text = "".join(json.dumps(r) + "\n" for r in rows())
    (files / "outputs.jsonl").write_text(text.replace('"cost": 0.5}', '"cost": NaN}', 1))
    with pytest.raises(DataError, match="'cost' is NaN"):
        run(files)
    lines = rows()
    lines.append({**lines[0], "sample": 0})
    lines[0]["sample"] = 0
    (files / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(DataError, match="duplicate sample: problem 'a', model 'org/small'"):
        run(files)
    (files / "outputs.jsonl").write_text(text)
    monkeypatch.setattr("cascadec.sim.bank_import.MAX_SAMPLE_CHARS", 20)
    with pytest.raises(DataError, match="over 20 characters"):
        run(files)
    assert not (files / "bank").exists() and not list(files.glob(".bank*"))


def test_recorded_costs_need_a_priced_registry(files):
    (files / "params.yaml").write_text(
        "version: 1\nmodels:\n  - {id: small, params: 1e9}\n  - {id: big, params: 7e9}\n"
    )
    with pytest.raises(DataError, match="one cost scale"):
        run(files, models=str(files / "params.yaml"))


def test_out_is_refused_unless_overwrite(files):
    run(files)
    with pytest.raises(RunDirError, match="--overwrite"):
        run(files)
    run(files, overwrite=True)
    (files / "mine").mkdir()
    (files / "mine" / "notes.txt").write_text("user's")
    with pytest.raises(RunDirError):
        run(files, out="mine", overwrite=True)
    assert (files / "mine" / "notes.txt").read_text() == "user's"


def test_agreement_with_the_files_own_verdicts(files):
    lines = [
        {"id": "a", "model": "small", "text": "The answer is 5.", "correct": True},
        {"id": "b", "model": "small", "text": "The answer is 2.50.", "correct": False},  # the file is wrong
        {"id": "c", "model": "small", "text": "The answer is 41.", "correct": False},
        {"id": "c", "model": "big", "text": "The answer is 42.", "correct": True},
    ]
    (files / "outputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    report = run(files).report
    assert report["source_agreement"] == {"verdicts": 4, "agreement": 0.75, "disagreements": 1}
    (d,) = report["disagreements"]
    assert (d["id"], d["model"], d["source"], d["ours"], d["answer"], d["gold"]) == (
        "b",
        "org/small",
        False,
        True,
        "2.5",
        "2.5",
    )


def test_cli_prints_the_report_and_exits_1_on_bad_rows(files):
    args = [
        "bank",
        "import",
        str(files / "outputs.jsonl"),
        "--data",
        str(files / "problems.jsonl"),
        "--models",
        str(files / "models.yaml"),
    ]
    res = runner.invoke(app, [*args, "--out", str(files / "bank")])
    assert res.exit_code == 0, res.output
    assert "org/small" in res.output and "accuracy" in res.output
    info = runner.invoke(app, ["bank", "info", str(files / "bank"), "--json"])
    models = {m["model"]: m for m in json.loads(info.output)["models"]}
    assert models["org/small"]["accuracy"] == 0.5
    (files / "outputs.jsonl").write_text(json.dumps({"id": "nope", "model": "small", "text": "1"}) + "\n")
    res = runner.invoke(app, [*args, "--out", str(files / "other")])
    assert res.exit_code == 1 and "E500" in res.output and "row 0" in res.output
    assert not (files / "other").exists()


def test_a_second_import_reads_the_grading_cache(files, grade_cache, monkeypatch):
    first = run(files, out="one").frame
    assert list(grade_cache.glob("answers-boxed_or_final_line-*.parquet"))

    def never(*args, **kwargs):
        raise AssertionError("extracted again despite the cache")

    monkeypatch.setattr("cascadec.sim.import_grade.extract_all", lambda texts, fmt: never() if texts else [])
    monkeypatch.setattr("cascadec.runtime.equivalence.Equivalence.grade", never)
    second = run(files, out="two").frame
    assert second[["answer", "correct"]].equals(first[["answer", "correct"]])
    monkeypatch.setattr("cascadec.sim.import_cache.grader_version", lambda: "another-grader")
    with pytest.raises(AssertionError, match="despite the cache"):
        run(files, out="three")


def test_the_cache_can_be_turned_off(files, grade_cache, monkeypatch):
    monkeypatch.setenv("CASCADEC_CACHE_DIR", "off")
    run(files)
    assert not grade_cache.exists()


def test_an_api_ladder_imports_simulates_and_calibrates(tmp_path, monkeypatch):
    """Recorded USD costs and per-sample confidences; a weak model with 16 samples per problem
    beside a strong greedy one; no registry given: import, then simulate and calibrate on it."""
    import random

    rng = random.Random(7)
    problems = pd.DataFrame(
        [{"id": f"p{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(400)]
    )
    problems.to_json(tmp_path / "problems.jsonl", orient="records", lines=True)
    lines = []
    for i in range(400):
        hard = i % 5 == 0
        for s in range(16):
            right = rng.random() < (0.3 if hard else 0.9)
            answer = 2 * i if right else 2 * i + rng.randint(1, 9)
            lines.append(
                {
                    "id": f"p{i}",
                    "model": "acme/mini",
                    "sample": s,
                    "temperature": 0.7,
                    "text": f"Adding, {i} + {i}. The answer is {answer}.",
                    "completion_tokens": 12,
                    "cost": 0.00002,
                    "confidence": round(rng.random(), 3),
                }
            )
        lines.append(
            {
                "id": f"p{i}",
                "model": "acme/max",
                "temperature": 0.0,
                "completion_tokens": 30,
                "text": f"The answer is {2 * i if rng.random() < 0.98 else 0}.",
                "cost": 0.003,
                "confidence": 0.9,
            }
        )
    jsonl = tmp_path / "ladder.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in lines))
    res = runner.invoke(
        app,
        [
            "bank",
            "import",
            str(jsonl),
            "--data",
            str(tmp_path / "problems.jsonl"),
            "--out",
            str(tmp_path / "bank"),
        ],
    )
    assert res.exit_code == 0, res.output
    bank = load_bank(tmp_path / "bank")
    assert bank["score"].notna().all() and bank["cost"].notna().all()  # confidence became the score
    from cascadec.registry import load_registry

    registry = load_registry(tmp_path / "bank" / "models.yaml")
    assert registry.priced and registry.resolve("acme/max").cost_per_token == pytest.approx(0.003 / 30)
    space = tmp_path / "space.yaml"
    space.write_text(
        f"version: 1\nname: ladder\nmodels: {tmp_path / 'bank' / 'models.yaml'}\ndefaults: {{seed: 0}}\n"
        "strategy:\n  cascade:\n"
        "    - {model: acme/mini, k: 16, temperature: 0.7, escalate_if: 'agreement < 0.5'}\n"
        "    - {model: acme/max}\n"
        "search:\n  tiers:\n    - escalate_if: 'agreement < {a}'\n      grid: {a: [0.3, 0.5, 0.7, 0.9, 1.01]}\n"
        "    - {}\n"
    )
    args = ["--bank", str(tmp_path / "bank"), "--data", str(tmp_path / "problems.jsonl")]
    spec = tmp_path / "spec.yaml"
    spec.write_text(space.read_text().split("search:")[0])
    sim = runner.invoke(app, ["simulate", str(spec), *args, "--json", str(tmp_path / "sim.json")])
    assert sim.exit_code == 0, sim.output
    figures = json.loads((tmp_path / "sim.json").read_text())
    samples = bank[bank["model"] == "acme/mini"]
    assert figures["cost"] >= 16 * 400 * 0.00002 * (
        1 - 1e-9
    )  # every problem pays the weak tier's recorded cost
    cal = runner.invoke(
        app,
        [
            "calibrate",
            str(space),
            *args,
            "--out",
            str(tmp_path / "cal.yaml"),
            "--target",
            "accuracy >= largest - 3 pt with 90% confidence",
        ],
    )
    assert cal.exit_code == 0, cal.output
    text = (tmp_path / "cal.yaml").read_text()
    assert "acme/mini" in text and "certif" in text.lower()
    assert len(samples) == 16 * 400


def test_scalar_mean_logprob_and_confidence(files):
    line = {"id": "a", "model": "small", "text": "The answer is 5.", "mean_logprob": -0.3, "confidence": 0.8}
    (files / "outputs.jsonl").write_text(json.dumps(line) + "\n")
    bank = run(files).frame
    assert bank["logprobs"].iloc[0] == [-0.3] and bank["score"].iloc[0] == 0.8
    assert bank["score_confidence"].iloc[0] == 0.8
