"""Honest calibration (issue 23 item 4): every calibrate on a bank is recorded in a ledger beside
it; the certificate says how many looks the held-out problems have had; a second look warns and
states the Bonferroni-corrected level; --json is written on E700 too, naming the closest
candidates and why they failed; a cost refusal names the upper bound it tested."""

import json

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.runtime.backends.replay import write_bank
from cascadec.sim.calibrate import split
from cascadec.sim.certificate import read_certificate
from cascadec.sim.ledger import ledger_path, read_looks
from cascadec.sim.synthetic import (
    SYNTHETIC_SPACE,
    write_synthetic_search,
)

runner = CliRunner()
SPACE = SYNTHETIC_SPACE + "  early_stop: [null, 1]\n"


@pytest.fixture
def files(tmp_path):
    return write_synthetic_search(tmp_path, 400, seed=2, space=SPACE)


def calibrate(files, out, *extra, bank="bank.parquet"):
    res = runner.invoke(
        app,
        [
            "calibrate",
            str(files / "space.yaml"),
            "--bank",
            str(files / bank),
            "--data",
            str(files / "p.jsonl"),
            "--out",
            str(out),
            "--equivalence",
            "exact",
            *extra,
        ],
    )
    return res.exit_code, res.stdout, res.stderr


def ledger(files, bank="bank.parquet"):
    path = files / f"{bank}.calibrations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_calibrate_is_recorded_and_a_second_look_is_corrected(files):
    code, out, err = calibrate(files, files / "a.yaml", "--max-loss", "10")
    assert code == 0, out + err
    assert "warning" not in err
    [first] = ledger(files)
    assert first["outcome"] == "certified" and first["held_out_looked"] is True
    assert first["split_seed"] == 0 and first["calibration_fraction"] == 0.5 and first["delta"] == 0.05
    assert first["space_hash"].startswith("sha256:") and first["bank_hash"].startswith("sha256:")
    assert "accuracy >=" in first["target"] and first["time"] and first["chosen"].startswith("candidate-")
    cert = read_certificate(files / "a.yaml")
    assert cert["looks"]["count"] == 1 and cert["looks"]["corrected_confidence"] == pytest.approx(0.95)
    assert "looked at once" in (files / "a.yaml").read_text()
    assert "looked at 1 time(s)" in out

    # re-splitting: a second look at the same bank's problems
    code, out, err = calibrate(files, files / "b.yaml", "--max-loss", "10", "--calibration-fraction", "0.3")
    assert code == 0, out + err
    assert "looked at 2 times" in err and "Bonferroni" in err and "90%" in err
    cert = read_certificate(files / "b.yaml")
    assert cert["looks"]["count"] == 2 and cert["looks"]["corrected_confidence"] == pytest.approx(0.90)
    assert cert["looks"]["previous"][0]["calibration_fraction"] == 0.5
    text = (files / "b.yaml").read_text()
    assert "looked at 2 times" in text and "confidence >= 90%" in text
    assert [e["calibration_fraction"] for e in ledger(files)] == [0.5, 0.3]


def test_the_ledger_is_beside_the_bank_never_inside_a_cascadec_folder(tmp_path):
    assert ledger_path(tmp_path / "bank.parquet") == tmp_path / "bank.parquet.calibrations.jsonl"
    folder = tmp_path / "runs" / "bank"
    folder.mkdir(parents=True)
    assert ledger_path(folder) == tmp_path / "runs" / "bank.calibrations.jsonl"
    (folder / ".cascadec.lock").write_text("")  # a cascadec folder: a file in it names the folder
    (folder / "samples.parquet").write_text("")
    assert ledger_path(folder / "samples.parquet") == tmp_path / "runs" / "bank.calibrations.jsonl"


def test_a_damaged_ledger_is_an_error_not_a_forgotten_look(tmp_path):
    path = tmp_path / "b.calibrations.jsonl"
    path.write_text('{"bank_hash": "h", "delta": 0.05}\nnot json\n')
    with pytest.raises(Exception, match="not JSON"):
        read_looks(path, "h", 0.05)
    path.write_text('{"bank_hash": "h", "delta": 0.05}\n{"bank_hash": "other", "delta": 0.05}\n')
    looks = read_looks(path, "h", 0.1)
    assert looks.count == 2 and looks.family_delta == pytest.approx(0.15)


def test_e700_on_held_out_writes_the_json_diagnosis_and_counts_as_a_look(files):
    # the small model agrees on a wrong answer on every held-out problem of split seed 0: the
    # sequence is chosen on the calibration split, then nothing certifies
    import pandas as pd

    from cascadec.runtime.data import problems_from_frame
    from cascadec.runtime.testing import sample_text

    (files / "space.yaml").write_text(SPACE.replace(", optional: true", ""))  # every candidate asks S first
    problems = problems_from_frame(pd.read_json(files / "p.jsonl", lines=True, dtype={"id": str}))
    _, hold = split(problems, 0.5, 0)
    bank = pd.read_parquet(files / "bank.parquet")
    rows = bank["problem_id"].isin({problems[i].id for i in hold}) & (bank["model"] == "S")
    bank.loc[rows, "text"] = sample_text("999")[0]
    write_bank(bank, files / "scrambled.parquet")
    report = files / "why.json"
    code, out, err = calibrate(
        files, files / "x.yaml", "--max-loss", "10", "--json", str(report), bank="scrambled.parquet"
    )
    assert code == 1 and "E700" in out + err and not (files / "x.yaml").exists()
    why = json.loads(report.read_text())
    assert why["outcome"] == "E700" and why["stage"] == "held_out" and why["looks"]["count"] == 1
    assert why["closest"] and why["closest"][0]["tested"] is True
    first = why["closest"][0]
    assert first["key"].startswith("candidate-") and first["failed"] and "accuracy: p =" in first["failed"][0]
    assert first["losses"] > 0 and first["problems"] == why["held_out_problems"]
    [entry] = ledger(files, "scrambled.parquet")
    assert entry["outcome"] == "E700" and entry["held_out_looked"] is True


def test_cost_refusal_explains_its_upper_bound_and_is_no_held_out_look(files):
    report = files / "why.json"
    code, out, err = calibrate(files, files / "x.yaml", "--target", "cost <= 0.05x", "--json", str(report))
    assert code == 1 and "E700" in out + err
    text = " ".join((out + err).split())
    assert "even on the calibration split" in text and "upper confidence bound" in text
    assert "lowest bound is" in text and "point ratio" in text
    why = json.loads(report.read_text())
    assert why["stage"] == "calibration" and len(why["closest"]) == 5
    assert all(any(f.startswith("cost: upper bound") for f in c["failed"]) for c in why["closest"])
    assert all(
        c["cost_ratio_upper_bound"] is None or c["cost_ratio_upper_bound"] >= c["cost_ratio"]
        for c in why["closest"]
    )
    assert "upper confidence bound" in why["cost_bound"]
    [entry] = ledger(files)
    assert entry["held_out_looked"] is False  # stopped before the held-out split: not a look
    code, out, err = calibrate(files, files / "a.yaml", "--max-loss", "10")
    assert code == 0 and "warning" not in err
    assert read_certificate(files / "a.yaml")["looks"]["count"] == 1
