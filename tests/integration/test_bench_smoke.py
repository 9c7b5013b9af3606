"""CI smoke of every benchmark: each ``benchmarks/bench_*.py --smoke --json`` runs and reports its keys.

A benchmark is not a timed test (issue 15): the figures of a smoke run mean nothing, so only
that the script ends cleanly and that its JSON carries every figure ``benchmarks/harness.py``
assigns to it (and no other) is checked. Scripts that load vLLM engines make this an
integration test; every script runs in its own process, as ``make bench`` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import run_all  # noqa: E402

pytestmark = pytest.mark.integration
SMOKE_TIMEOUT = 300  # seconds per script: a smoke run takes seconds to a minute


def _keys(script: str) -> set[str]:
    return {t.key for t in harness.TARGETS if t.script == script}


def test_every_target_names_a_script_that_exists():
    missing = sorted({t.script for t in harness.TARGETS if not (BENCH / t.script).is_file()})
    assert not missing


@pytest.mark.parametrize("script", run_all.scripts())
def test_benchmark_smoke_runs_and_reports_every_key(script, tmp_path):
    out = tmp_path / "figures.json"
    results = BENCH / "results"
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir()} if results.is_dir() else {}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        cwd=tmp_path,  # a script must not depend on, or write into, the working directory
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    payload = json.loads(out.read_text())
    assert payload["smoke"] is True
    assert set(payload["figures"]) == _keys(script), f"{script}: keys differ from harness.TARGETS"
    assert all(isinstance(v, int | float) for v in payload["figures"].values())
    assert isinstance(payload["absolute"], dict)
    after = {p.name: p.stat().st_mtime_ns for p in results.iterdir()} if results.is_dir() else {}
    assert after == before, "a smoke run must not touch benchmarks/results/"
    assert not list(tmp_path.glob("*.parquet")), "a smoke run leaves no files behind"
