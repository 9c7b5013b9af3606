"""Fault: the vLLM worker process of a model is killed mid-run (as the OOM killer would).

The run must fail fast with one clear error naming the model, keep every finished sample in its
journal, and ``--resume`` must complete the run with every problem exactly once.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from cascadec.registry import load_registry, named_registry
from cascadec.zoo.task import sample_problems

pytestmark = pytest.mark.integration
psutil = pytest.importorskip("psutil")  # ships with vLLM
N = 150


def _lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_killed_worker_fails_fast_naming_the_model_and_resume_completes(tmp_path):
    small, _, large = (
        e.aliases[0] for e in sorted(load_registry(named_registry("zoo")).models, key=lambda e: e.params)
    )
    pd.DataFrame(sample_problems(N, 99)).to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cascadec", "run", "--marker", f"mv_cascade_{small}_k4_t0.7_{large}_k1_t0.0",
           "--models", "zoo", "--data", str(tmp_path / "p.jsonl"), "--out", str(out), "--batch-size", "4",
           "--equivalence", "exact", "--no-progress"]  # fmt: skip
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _lines(out / "samples.jsonl") == 0 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, run.communicate()
    workers = [
        p for p in psutil.Process(run.pid).children(recursive=True) if "spawn" in " ".join(p.cmdline())
    ]
    assert workers, "no vLLM worker process found"
    killed_at = time.monotonic()
    for w in workers:
        os.kill(w.pid, signal.SIGKILL)
    _, err = run.communicate(timeout=120)
    assert time.monotonic() - killed_at < 30, "the run must fail fast when its worker dies"
    assert run.returncode == 1, err
    assert "Traceback" not in err and "worker of model" in err and "died" in err and "SIGKILL" in err, err
    kept = _lines(out / "samples.jsonl")
    assert kept > 0 and not (out / "problems.parquet").exists()

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    problems = pd.read_parquet(out / "problems.parquet")
    assert len(problems) == N and problems["id"].is_unique
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["sessions"]) == 2
    generated = sum(m["samples"] for m in manifest["sessions"][1]["models"].values())
    samples = pd.read_parquet(out / "samples.parquet")
    assert generated + kept == len(samples)  # every journaled sample kept, none generated again
