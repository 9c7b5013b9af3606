"""cascadec bank build|info and simulate, on a synthetic bank through the real CLI."""

import json

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.runtime.backends.replay import write_bank
from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    problems = synthetic_problems(30, seed=1)
    problems.to_json(d / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=8, seed=1), d / "bank.parquet")
    (d / "reg.yaml").write_text(synthetic_registry_yaml())
    (d / "spec.yaml").write_text(
        "version: 1\nname: c\nmodels: reg.yaml\ndefaults: {max_tokens: 48, prompt: raw}\nstrategy:\n  cascade:\n"
        "    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: 'agreement < 1.0'}\n"
        "    - {model: 3M}\n"
    )
    return d


def test_simulate_json_has_the_documented_keys(files, tmp_path):
    out = tmp_path / "sim.json"
    res = runner.invoke(
        app,
        [
            "simulate",
            str(files / "spec.yaml"),
            "--bank",
            str(files / "bank.parquet"),
            "--data",
            str(files / "p.jsonl"),
            "--json",
            str(out),
            "--equivalence",
            "exact",
        ],
    )
    assert res.exit_code == 0, res.output
    body = json.loads(out.read_text())
    assert {"accuracy", "cost", "samples", "escalation_rates"} <= set(body)
    assert 0 <= body["accuracy"] <= 1 and body["samples"] >= 30 * 4
    assert len(body["escalation_rates"]) == 1


def test_simulate_bad_bank_is_one_message(files):
    res = runner.invoke(
        app,
        [
            "simulate",
            str(files / "spec.yaml"),
            "--bank",
            str(files / "nope.parquet"),
            "--data",
            str(files / "p.jsonl"),
        ],
    )
    assert res.exit_code == 2  # a missing input file: I/O, E901
    assert "E901 no such sample bank" in res.output


def test_bank_info_and_build_by_replay(files, tmp_path):
    res = runner.invoke(app, ["bank", "info", str(files / "bank.parquet"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["problems"] == 30 and info["hash"].startswith("sha256:")
    out = tmp_path / "b"
    res = runner.invoke(
        app,
        [
            "bank",
            "build",
            "--models",
            str(files / "reg.yaml"),
            "--data",
            str(files / "p.jsonl"),
            "--k",
            "4",
            "--out",
            str(out),
            "--backend",
            "replay",
            "--bank",
            str(files / "bank.parquet"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    info = json.loads(runner.invoke(app, ["bank", "info", str(out), "--json"]).output)
    ks = {(s["model"], s["temperature"]): s["min_k"] for s in info["streams"]}
    assert ks[("S", 0.7)] == 4 and ks[("L", 0.0)] == 1
