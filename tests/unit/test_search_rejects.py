"""Issue 21's failing case: a search space with an optional middle tier and ``start_tiers``
naming a later tier. Leaving the middle tier out makes candidates the compiler rejects
(E400 start tier 2 does not exist); calibrate and optimize drop them before any simulation,
say how many and why, and never write a spec that does not compile."""

import json

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.compiler import compile_spec
from cascadec.runtime.backends.replay import write_bank
from cascadec.sim.search import load_candidates
from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

runner = CliRunner()
SPACE = """version: 1
name: s
models: reg.yaml
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.1M, k: 2, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 0.4M, k: 2, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 3M}
search:
  tiers:
    - {escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}}
    - {optional: true}
    - {}
  adaptive_k:
    - null
    - {policy: difficulty_buckets, start_tiers: [[0.4, 0], [0.8, 1], [1.0, START]]}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rejects")
    problems = synthetic_problems(200, seed=4)
    problems.to_json(d / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=2, temperatures=(0.7,), seed=4), d / "bank.parquet")
    (d / "reg.yaml").write_text(synthetic_registry_yaml())
    (d / "space.yaml").write_text(SPACE.replace("START", "2"))
    (d / "none.yaml").write_text(SPACE.replace("START", "3").replace("    - null\n", ""))
    return d


def common(files):
    return (
        *("--bank", str(files / "bank.parquet"), "--data", str(files / "p.jsonl")),
        *("--equivalence", "exact"),
    )


def test_the_expansion_keeps_rejected_candidates_apart(files):
    *_, plan, _, expansion = load_candidates(files / "space.yaml")
    # 2 thresholds x (middle tier kept or left out) x 2 adaptive-k choices
    assert expansion.total == 8 and len(expansion) == 6 and len(expansion.rejected) == 2
    for r in expansion.rejected:
        assert r.error.code == "E400" and "start tier 2 does not exist" in r.error.message
        assert "tier 1 left out" in r.choices
    assert "2 of 8 candidates rejected by the compiler" in expansion.summary()
    assert all(c.strategy.key == f"candidate-{c.index}" for c in expansion)


def test_calibrate_drops_rejected_candidates_and_writes_a_spec_that_compiles(files):
    out = files / "calibrated.yaml"
    res = runner.invoke(
        app, ["calibrate", str(files / "space.yaml"), "--out", str(out), *common(files), "--max-loss", "20"]
    )
    assert res.exit_code == 0, res.output
    assert "2 of 8 candidates rejected by the compiler (never simulated)" in res.stderr
    assert "E400 start tier 2 does not exist" in res.stderr
    assert "calibrate: 6 candidates" in res.stderr
    compile_spec(out)


def test_optimize_drops_rejected_candidates_and_writes_only_points_that_compile(files):
    out = files / "front"
    argv = [
        "optimize",
        "--space",
        str(files / "space.yaml"),
        "--out",
        str(out),
        *common(files),
        "--no-progress",
    ]
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output
    assert "2 of 8 candidates rejected by the compiler" in res.stderr
    body = json.loads((out / "frontier.json").read_text())
    assert body["candidates"] == 6 and len(body["rejected"]) == 2
    for row in body["frontier"]:
        assert (out / row["spec"]).is_file()
        compile_spec(out / row["spec"])
    assert "rejected by the compiler" in (out / "frontier.md").read_text()


@pytest.mark.parametrize("command", ["calibrate", "optimize"])
def test_a_space_the_compiler_rejects_entirely_fails_before_any_simulation(files, monkeypatch, command):
    import cascadec.sim.calibrate
    import cascadec.sim.optimize

    def never(*a, **k):
        raise AssertionError("simulated a candidate the compiler rejects")

    monkeypatch.setattr(cascadec.sim.calibrate, "calibrate", never)
    monkeypatch.setattr(cascadec.sim.optimize, "optimize", never)
    out = files / f"never-{command}"
    space = str(files / "none.yaml")
    where = (
        [space, "--out", str(out) + ".yaml"]
        if command == "calibrate"
        else ["--space", space, "--out", str(out)]
    )
    res = runner.invoke(app, [command, *where, *common(files)])
    assert res.exit_code == 1, res.output
    assert "E400" in res.stderr and "rejects every candidate" in res.stderr
    assert "start tier 3 does not exist" in res.stderr
    assert not (files / f"never-{command}.yaml").exists() and not out.exists()
