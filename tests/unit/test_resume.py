"""Interrupted runs: SIGKILL a real `cascadec run` mid-way, then --resume; and what resume refuses."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from cascadec.api import execute, prepare
from cascadec.errors import CascadecError, RunDirError
from cascadec.plan import plan_to_json
from cascadec.runtime.backends.replay import ReplayBackend, write_bank
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.results import load_results
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier

N = 30
MODELS = {"S": 1.5, "M": 7.0, "L": 72.0}
PLAN = make_plan(
    [
        strategy(
            "c",
            [
                tier("S", 4, escalate_if="agreement < 0.75"),
                tier("M", 4, escalate_if="agreement < 0.75"),
                tier("L", 1, 0.0),
            ],
        )
    ],
    MODELS,
)


def answers():
    out = {}
    for i in range(N):
        gold = str(i)
        out[("S", f"p{i}")] = [gold] * 4 if i % 3 == 0 else [gold, "x", "y", "z"]
        out[("M", f"p{i}")] = [gold] * 4 if i % 3 == 1 else ["a", "b", gold, gold]
        out[("L", f"p{i}")] = [gold]
    return out


@pytest.fixture
def files(tmp_path):
    (tmp_path / "plan.json").write_text(plan_to_json(PLAN))
    rows = [{"id": f"p{i}", "problem": f"q{i}", "answer": str(i)} for i in range(N)]
    pd.DataFrame(rows).to_json(tmp_path / "data.jsonl", orient="records", lines=True)
    write_bank(bank_from_answers(answers()), tmp_path / "bank.parquet")
    return tmp_path


def cli(files, out, *extra, env=None):
    return [
        sys.executable,
        "-m",
        "cascadec.cli_run",
        "run",
        str(files / "plan.json"),
        "--data",
        str(files / "data.jsonl"),
        "--out",
        str(out),
        "--backend",
        "replay",
        "--bank",
        str(files / "bank.parquet"),
        "--batch-size",
        "3",
        "--equivalence",
        "exact",
        "--no-progress",
        *extra,
    ]


def reference(files):
    prepared = prepare(PLAN, pd.read_json(files / "data.jsonl", lines=True, dtype=False))
    problems, samples, *_ = execute(
        prepared, ReplayBackend(files / "bank.parquet"), equivalence=Equivalence("exact"), batch_size=3
    )
    return problems, samples


def lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


# during the first model, during the second, and at a random point (seed: CASCADEC_KILL_SEED)
KILL_SEED = int(os.environ.get("CASCADEC_KILL_SEED", time.time_ns() % 10**6))
RANDOM_KILL = random.Random(KILL_SEED).randint(5, 150)


@pytest.mark.parametrize("kill_after", [30, 140, RANDOM_KILL])
def test_sigkill_then_resume(files, kill_after):
    out = files / "out"
    env = {**os.environ, "CASCADEC_REPLAY_DELAY": "0.15"}
    proc = subprocess.Popen(cli(files, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out / "samples.jsonl"
    deadline = time.monotonic() + 60
    while lines(journal) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"run ended before the kill: {proc.stderr.read().decode()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (out / "problems.parquet").exists()
    kept = lines(journal)
    with open(journal, "ab") as f:  # a kill in the middle of a write leaves a torn line
        f.write(b'{"id": "p1", "strategy": "c", "tier": 0, "te')

    done = subprocess.run(cli(files, out, "--resume"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    problems = load_results(out)
    samples = load_results(out, samples=True)
    assert sorted(problems["id"]) == sorted(f"p{i}" for i in range(N))  # every problem exactly once
    assert not samples.duplicated(["id", "strategy", "tier", "sample_index"]).any()
    ref_problems, ref_samples = reference(files)
    cols = [c for c in problems.columns if c != "seconds"]
    pd.testing.assert_frame_equal(problems[cols], ref_problems[cols])
    scols = [c for c in samples.columns if c != "seconds"]
    pd.testing.assert_frame_equal(samples[scols], ref_samples[scols])

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["sessions"]) == 2
    second = manifest["sessions"][1]
    assert second["resumed"] is True
    reused = sum(m["reused_samples"] for m in second["models"].values())
    generated = sum(m["samples"] for m in second["models"].values())
    # every journaled sample is in the results and none was generated again (samples of problems
    # finished before the kill come straight from the journal; the others were fed back to their jobs)
    assert generated + kept == len(samples)
    assert 0 < reused <= kept
    assert not journal.exists()  # the run is whole in its parquet tables: the journals went


def test_resume_of_a_finished_run_generates_nothing(files):
    out = files / "out"
    before, *_ = _start(files, out)
    after, *_ = _start(files, out, resume=True)
    pd.testing.assert_frame_equal(load_results(out), before)
    pd.testing.assert_frame_equal(after, before)
    session = json.loads((out / "manifest.json").read_text())["sessions"][-1]
    assert session["models"] == {}  # no model was even loaded


def _start(files, out, plan=PLAN, frame=None, resume=False):
    frame = pd.read_json(files / "data.jsonl", lines=True, dtype=False) if frame is None else frame
    return execute(
        prepare(plan, frame),
        ReplayBackend(files / "bank.parquet"),
        out=out,
        resume=resume,
        equivalence=Equivalence("exact"),
    )


def _unfinished(files, out):
    """A run that stopped half-way (the largest model's samples missing): its journals stay."""
    bank = pd.read_parquet(files / "bank.parquet")
    write_bank(bank[bank["model"] != "L"], files / "partial.parquet")
    frame = pd.read_json(files / "data.jsonl", lines=True, dtype=False)
    with pytest.raises(CascadecError):
        execute(
            prepare(PLAN, frame),
            ReplayBackend(files / "partial.parquet"),
            out=out,
            equivalence=Equivalence("exact"),
        )


def test_a_finished_run_keeps_no_journal(files):
    out = files / "out"
    _start(files, out)
    assert not (out / "samples.jsonl").exists() and not (out / "problems.jsonl").exists()
    record = json.loads((out / ".cascadec-owned.json").read_text())
    assert "samples.jsonl" not in record["files"] and "problems.jsonl" not in record["files"]
    _unfinished(files, files / "half")
    assert (files / "half" / "samples.jsonl").stat().st_size > 0  # kept until the run is finished


def test_resume_refuses_another_plan_or_data(files):
    out = files / "out"
    _start(files, out)
    with pytest.raises(RunDirError, match="already holds a finished run") as done:
        _start(files, out)
    assert "--resume" not in str(done.value)  # nothing left to finish
    other = make_plan(
        [strategy("c", [tier("S", 4, escalate_if="agreement < 0.5"), tier("L", 1, 0.0)])], MODELS
    )
    with pytest.raises(RunDirError, match="E502 cannot resume: the run was started with plan") as info:
        _start(files, out, plan=other, resume=True)
    assert info.value.code == "E502"
    frame = pd.read_json(files / "data.jsonl", lines=True, dtype=False).head(5)
    with pytest.raises(RunDirError, match="problems differ"):
        _start(files, out, frame=frame, resume=True)


def test_resume_on_an_empty_directory_starts_a_run(files):
    problems, *_ = _start(files, files / "fresh", resume=True)
    assert len(problems) == N


def test_damaged_run_directories(files):
    out = files / "out"
    out.mkdir()
    (out / "samples.jsonl").write_text("{}\n")
    with pytest.raises(RunDirError, match=r"cascadec did not write \(samples.jsonl\)"):
        _start(files, out)
    good = files / "good"
    _unfinished(files, good)  # a finished run has no journals left: one that stopped half-way
    text = (good / "samples.jsonl").read_text().splitlines()
    text[3] = text[3][:20]
    (good / "samples.jsonl").write_text("\n".join(text) + "\n")
    with pytest.raises(RunDirError, match="samples.jsonl:4: E502 corrupt journal line"):
        _start(files, good, resume=True)


def test_cli_reports_resume_errors(files):
    import typer
    from typer.testing import CliRunner

    from cascadec.cli_run import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    out = files / "out"
    args = cli(files, out)[3:]  # from "run" on
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "E502" in again.stderr and "finished run" in again.stderr
    assert "--resume" not in again.stderr  # a finished run has nothing to resume
    assert "Traceback" not in again.output
