"""A bank of some of the data's problems, and a spec reading answers another way than the bank
was imported with: simulate, calibrate and optimize say so instead of failing or scoring 0%."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.runtime.backends.replay import write_bank
from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

runner = CliRunner()
SPACE = """version: 1
name: s
models: reg.yaml
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.1M, k: 2, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 3M}
search:
  tiers:
    - {escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}}
    - {}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cover")
    problems = synthetic_problems(120, seed=4)
    problems.to_json(d / "p.jsonl", orient="records", lines=True)
    bank = synthetic_bank(problems.head(80), k=2, temperatures=(0.7,), seed=4)
    write_bank(bank, d / "bank.parquet")
    (d / "reg.yaml").write_text(synthetic_registry_yaml())
    (d / "space.yaml").write_text(SPACE)
    return d


def simulate(files, data, bank=None):
    """``cascadec simulate`` of one marker on the (given or module) bank and ``data``."""
    bank = bank or str(files / "bank.parquet")
    args = [
        "simulate",
        "mv_0.1M_k2_t0.7",
        "--models",
        str(files / "reg.yaml"),
        "--bank",
        bank,
        "--data",
        data,
    ]
    return runner.invoke(app, args)


def test_simulate_uses_the_problems_the_bank_covers(files):
    r = simulate(files, str(files / "p.jsonl"))
    assert r.exit_code == 0, r.output
    assert "samples for 80 of the 120 problems" in r.output


def test_calibrate_and_optimize_use_the_problems_the_bank_covers(files):
    common = ["--bank", str(files / "bank.parquet"), "--data", str(files / "p.jsonl")]
    r = runner.invoke(
        app, ["optimize", "--space", str(files / "space.yaml"), *common, "--json", str(files / "f.json")]
    )
    assert r.exit_code == 0, r.output
    assert "samples for 80 of the 120 problems" in r.output
    r = runner.invoke(
        app,
        [
            "calibrate",
            str(files / "space.yaml"),
            *common,
            "--out",
            str(files / "c.yaml"),
            "--target",
            "accuracy >= largest - 30 pt with 90% confidence",
        ],
    )
    assert "samples for 80 of the 120 problems" in r.output
    assert r.exit_code in (0, 1) and "E999" not in r.output


def test_a_bank_of_other_problems_is_a_clear_error(files, tmp_path):
    other = synthetic_problems(5, seed=99)
    other.to_json(tmp_path / "o.jsonl", orient="records", lines=True)
    r = simulate(files, str(tmp_path / "o.jsonl"))
    assert r.exit_code == 1 and "no samples for any problem" in r.output


def test_a_spec_reading_answers_another_way_is_warned(files, tmp_path):
    bank = pd.read_parquet(files / "bank.parquet")
    bank["text"] = [f"so the answer is {i % 7 + 100}." for i in range(len(bank))]  # no box anywhere
    bank["answer"] = [str(i % 7 + 100) for i in range(len(bank))]  # what bank import read
    write_bank(bank, tmp_path / "b.parquet")
    r = simulate(files, str(files / "p.jsonl"), bank=str(tmp_path / "b.parquet"))
    assert r.exit_code == 0, r.output
    assert "reads answers as boxed" in r.output and "finds none in 100%" in r.output
