"""The benchmark harness: every figure the issue names has one target and a script that measures it,
the README includes the generated table, and a missed or missing figure is never shown as met."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402
import run_all  # noqa: E402

ISSUE_KEYS = {
    "executor_overhead_ratio", "continuous_vs_barrier_ratio", "cascade_cost_ratio",
    "cascade_accuracy_delta_pt", "oracle_cost_ratio", "adaptive_sample_ratio",
    "adaptive_accuracy_delta_pt", "confidence_token_ratio", "lint_markers_per_s",
    "lint_distinct_markers_per_s", "simulate_problem_configs_per_s", "vote_seconds_share",
    "max_model_loads_per_model", "serve_throughput_ratio",
    # issue 11 (answers)
    "answers_equivalence_agreement", "answers_extraction_agreement",
    "vote_checks_per_second_cached", "vote_vs_math_verify_speedup",
}  # fmt: skip


def test_every_figure_has_one_target():
    keys = [t.key for t in harness.TARGETS]
    assert len(keys) == len(set(keys))
    assert ISSUE_KEYS <= set(keys)  # the issue's figures; capabilities may add their own


def test_missed_and_missing_figures_are_shown_as_such():
    table = harness.markdown(
        {"figures": {"lint_markers_per_s": 5.0, "vote_seconds_share": 0.01}, "machine": {}}
    )
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| `")}
    assert "**missed**" in rows["`lint_markers_per_s`"]
    assert "| met |" in rows["`vote_seconds_share`"]
    assert "| missing |" in rows["`serve_throughput_ratio`"]


def test_readme_has_the_generated_performance_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert run_all.BEGIN in text and run_all.END in text
    assert text.index(run_all.BEGIN) < text.index(run_all.END)


def test_lint_benchmark_smoke_reports_its_keys(tmp_path):
    out = tmp_path / "figures.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_lint.py"), "--smoke", "--json", str(out)],
        check=True,
        capture_output=True,
    )
    import json

    figures = json.loads(out.read_text())["figures"]
    assert set(figures) == {"lint_markers_per_s", "lint_distinct_markers_per_s"}
    assert all(v > 0 for v in figures.values())
