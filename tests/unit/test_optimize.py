"""``optimize`` on synthetic banks: frontier points are non-dominated, the held-out split is
never looked at while choosing, --budget samples, and the command writes specs that compile."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.compiler import compile_spec
from cascadec.runtime.backends.replay import write_bank
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.sim.calibrate import split
from cascadec.sim.optimize import in_sample_floor, optimize, pareto_front, sample_candidates
from cascadec.sim.simulate import problems_for, simulate
from cascadec.sim.synthetic import (
    SYNTHETIC_MODELS,
    synthetic_bank,
    synthetic_problems,
    synthetic_registry_yaml,
)

EQ = Equivalence("exact")
runner = CliRunner()


def dominated(i, cost, acc):
    return any(
        cost[j] <= cost[i] and acc[j] >= acc[i] and (cost[j] < cost[i] or acc[j] > acc[i])
        for j in range(len(cost))
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_frontier_is_exactly_the_non_dominated_set(pairs):
    cost = np.array([c for c, _ in pairs], dtype=float)
    acc = np.array([a for _, a in pairs], dtype=float)
    front = pareto_front(cost, acc)
    assert all(not dominated(i, cost, acc) for i in front)
    assert list(cost[front]) == sorted(cost[front]) and list(acc[front]) == sorted(acc[front])
    for i in set(range(len(pairs))) - set(front):  # every other point is dominated or a duplicate
        assert dominated(i, cost, acc) or any((cost[j], acc[j]) == (cost[i], acc[i]) for j in front)


def test_budget_samples_without_replacement():
    assert sample_candidates(5, None, 0) == [0, 1, 2, 3, 4]
    picked = sample_candidates(1000, 50, 3)
    assert len(set(picked)) == 50 and picked == sorted(picked) and picked == sample_candidates(1000, 50, 3)


def candidates():
    return [
        strategy(
            f"c{k}-{a}",
            [tier("S", k, escalate_if=f"agreement < {a}", cost=1.0), tier("L", 1, 0.0, cost=30.0)],
        )
        for k in (1, 2, 4)
        for a in ("0.5", "0.75", "1.0")
    ]


REF = strategy("ref", [tier("L", 1, 0.0, cost=30.0)])
PLAN = make_plan([*candidates(), REF], SYNTHETIC_MODELS)


def test_held_out_is_never_looked_at_while_choosing():
    frame = synthetic_problems(400, seed=8)
    bank = synthetic_bank(frame, k=4, temperatures=(0.7,), seed=8)
    problems = problems_for(PLAN, frame)
    calls = []

    def spy(plan, bank, probs, equivalence=None):
        calls.append({p.id for p in probs})
        return simulate(plan, bank, probs, equivalence=equivalence)

    res = optimize(candidates(), REF, PLAN, bank, problems, seed=4, equivalence=EQ, simulate_fn=spy)
    _, hold = split(problems, 0.5, 4)
    hold_ids = {problems[i].id for i in hold}
    assert calls[0].isdisjoint(hold_ids) and calls[-1] == hold_ids
    scrambled = bank.copy()
    scrambled.loc[scrambled["problem_id"].isin(hold_ids), "text"] = "nothing here"
    again = optimize(candidates(), REF, PLAN, scrambled, problems, seed=4, equivalence=EQ)
    assert [p.candidate for p in again.points] == [p.candidate for p in res.points]
    # the calibration figures are non-dominated among every candidate
    cal = [(p.calibration["cost_ratio"], p.calibration["accuracy"]) for p in res.points]
    assert [c for c, _ in cal] == sorted(c for c, _ in cal)
    assert [a for _, a in cal] == sorted(a for _, a in cal) and len({a for _, a in cal}) == len(cal)


def test_in_sample_floor_is_the_cheapest_candidate_within_the_loss():
    frame = synthetic_problems(300, seed=5)
    bank = synthetic_bank(frame, k=4, temperatures=(0.7,), seed=5)
    problems = problems_for(PLAN, frame)
    sim = simulate(PLAN, bank, problems, equivalence=EQ).outcome
    keys = [s.key for s in PLAN.strategies]
    acc = {k: float(np.nanmean(sim.correct[i])) for i, k in enumerate(keys)}
    cost = {k: float(sim.cost[i].sum()) for i, k in enumerate(keys)}
    for loss_pt in (0.0, 2.0, 10.0, 100.0):
        floor = in_sample_floor(candidates(), REF, PLAN, bank, problems, loss_pt, EQ)
        within = [c.key for c in candidates() if acc[c.key] >= acc["ref"] - loss_pt / 100 - 1e-12]
        if not within:
            assert floor is None
            continue
        best = min(cost[k] for k in within)
        assert floor["cost_ratio"] == pytest.approx(best / cost["ref"])
        assert floor["per_problem_cost"].sum() == pytest.approx(best)
        assert floor["accuracy"] >= floor["reference_accuracy"] - loss_pt / 100 - 1e-12
    # a loss of 100 points admits every candidate: the floor is the cheapest of all
    assert in_sample_floor(candidates(), REF, PLAN, bank, problems, 100.0, EQ)["cost_ratio"] == pytest.approx(
        min(cost[c.key] for c in candidates()) / cost["ref"]
    )


SPACE = """version: 1
name: s
models: reg.yaml
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 3M}
search:
  tiers:
    - {k: [1, 2, 4], escalate_if: "agreement < {a}", grid: {a: [0.5, 0.75, 1.0]}, optional: true}
    - {}
  early_stop: [null, 1]
"""


def test_optimize_command_writes_specs_that_compile(tmp_path):
    problems = synthetic_problems(300, seed=9)
    problems.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=4, temperatures=(0.7,), seed=9), tmp_path / "bank.parquet")
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml(("S", "L")))
    (tmp_path / "space.yaml").write_text(SPACE)
    out = tmp_path / "elsewhere" / "front"
    argv = [
        "optimize",
        *("--bank", str(tmp_path / "bank.parquet"), "--data", str(tmp_path / "p.jsonl")),
        *("--space", str(tmp_path / "space.yaml"), "--out", str(out), "--equivalence", "exact"),
        *("--json", str(tmp_path / "f.json"), "--no-progress"),
    ]
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output
    body = json.loads((out / "frontier.json").read_text())
    assert body == json.loads((tmp_path / "f.json").read_text())
    assert body["evaluated"] == body["candidates"] == 20
    assert body["calibration_problems"] + body["held_out_problems"] == 300
    assert any(b["name"] == "oracle" for b in body["baselines"])
    for row in body["frontier"]:
        lo, hi = row["cost_ratio_ci95"]
        assert lo <= row["cost_ratio"] <= hi
        plan, _ = compile_spec(out / row["spec"])  # compiles from another folder (registry path rebased)
        assert plan.strategies[0].key.startswith("frontier_")
    assert "| point |" in (out / "frontier.md").read_text()
    again = runner.invoke(app, argv)
    assert again.exit_code == 2 and "--overwrite" in again.output
    sampled = runner.invoke(app, [*argv, "--budget", "5", "--overwrite"])
    assert sampled.exit_code == 0, sampled.output
    assert json.loads((out / "frontier.json").read_text())["evaluated"] == 5
    assert len(list(out.glob("point-*.yaml"))) == len(
        json.loads((out / "frontier.json").read_text())["frontier"]
    )


def test_missing_space_is_a_clear_error(tmp_path):
    res = runner.invoke(
        app,
        [
            "optimize",
            "--bank",
            str(tmp_path / "b"),
            "--data",
            str(tmp_path / "p.jsonl"),
            "--space",
            str(tmp_path / "s.yaml"),
        ],
    )
    assert res.exit_code in (1, 2) and "error" in res.output and "Traceback" not in res.output
