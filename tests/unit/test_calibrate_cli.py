"""cascadec calibrate end to end on a synthetic bank: a spec that compiles, with its certificate."""

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.compiler import compile_spec
from cascadec.sim.certificate import read_certificate
from cascadec.sim.synthetic import (
    SYNTHETIC_SPACE,
    write_synthetic_search,
)

runner = CliRunner()
SPACE = SYNTHETIC_SPACE + "  early_stop: [null, 1]\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_synthetic_search(tmp_path_factory.mktemp("cal"), 400, seed=2, space=SPACE)


def args(files, out, *extra):
    return [
        "calibrate",
        str(files / "space.yaml"),
        "--bank",
        str(files / "bank.parquet"),
        "--data",
        str(files / "p.jsonl"),
        "--out",
        str(out),
        "--equivalence",
        "exact",
        *extra,
    ]


def test_calibrate_writes_a_certified_spec_that_compiles(files):
    out = files / "calibrated.yaml"
    res = runner.invoke(app, args(files, out, "--max-loss", "10"))
    assert res.exit_code == 0, res.output
    cert = read_certificate(out)
    assert cert["held_out_problems"] + cert["calibration_problems"] == 400
    assert cert["bank_hash"].startswith("sha256:") and cert["p_value"] <= 0.05
    plan, _ = compile_spec(out)
    assert plan.strategies[0].key == "calibrated"
    again = runner.invoke(app, args(files, out, "--max-loss", "10"))
    assert again.exit_code == 2 and "--overwrite" in again.output  # nothing replaced by default


def test_impossible_target_exits_1_with_e700(files):
    res = runner.invoke(app, args(files, files / "never.yaml", "--max-loss", "0.01"))
    assert res.exit_code == 1, res.output
    assert "E700" in res.output and not (files / "never.yaml").exists()


def test_target_phrases_certify_cost_and_accuracy(files):
    out = files / "cost.yaml"
    res = runner.invoke(
        app, args(files, out, "--target", "accuracy >= largest - 10 pt", "--target", "cost <= 1.2x")
    )
    assert res.exit_code == 0, res.output
    cert = read_certificate(out)
    assert cert["max_cost_ratio"] == 1.2 and cert["max_loss"] == 0.1
    assert cert["cost_ratio_upper_bound"] <= 1.2
    assert "cost <= 1.2x" in cert["target"] and "mean cost ratio <=" in out.read_text()
    compile_spec(out)


def test_bad_target_phrase_is_a_clear_error(files):
    res = runner.invoke(app, args(files, files / "bad.yaml", "--target", "cheap please"))
    assert res.exit_code == 1 and "E701" in res.output and "forms:" in res.output
    assert not (files / "bad.yaml").exists()
