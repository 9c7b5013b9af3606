"""``explain --bank``: its figures are the simulator's (totals and escalation equal ``simulate``'s),
and its per-tier split of samples and cost equals what a replay run records tier by tier."""

import numpy as np
import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.plan import RetryRule, resolve_tiers
from cascadec.runtime.backends.replay import ReplayBackend, write_bank
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.session import Prepared, execute
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.sim.estimate import bank_estimate
from cascadec.sim.simulate import problems_for, simulate
from cascadec.sim.synthetic import (
    SYNTHETIC_MODELS,
    synthetic_bank,
    synthetic_problems,
    synthetic_registry_yaml,
)

EQ = Equivalence("exact")
runner = CliRunner()
RETRY = RetryRule(max=1, when="agreement < 0.6", extra_k=2)
STRATEGIES = [
    strategy(
        "three",
        [
            tier("S", 4, escalate_if="agreement < 0.75", cost=1.0),
            tier("M", 2, escalate_if="agreement < 1.0", cost=4.0).model_copy(update={"retry": RETRY}),
            tier("L", 1, 0.0, cost=30.0),
        ],
    ),
    strategy("two", [tier("S", 2, escalate_if="agreement < 1.0", cost=1.0), tier("L", 1, 0.0, cost=30.0)]),
    strategy("vote", [tier("M", 4, cost=4.0)]),
]
PLAN = make_plan(STRATEGIES, SYNTHETIC_MODELS)


@pytest.fixture(scope="module")
def world():
    frame = synthetic_problems(150, seed=21)
    bank = synthetic_bank(frame, k=4, temperatures=(0.7,), seed=21)
    return frame, bank, problems_for(PLAN, frame)


def test_totals_equal_simulate(world):
    _, bank, problems = world
    est = bank_estimate(PLAN, bank, problems, equivalence=EQ)
    sim = simulate(PLAN, bank, problems, equivalence=EQ)
    for c, s in enumerate(PLAN.strategies):
        want, got = sim.summary(c), est[s.key]
        for key in ("accuracy", "cost", "samples", "escalation_rates", "reached"):
            assert got[key] == want[key], key
        assert sum(t["samples_per_problem"] for t in got["tiers"]) == pytest.approx(
            want["samples"] / len(problems)
        )
        assert sum(t["cost_per_problem"] for t in got["tiers"]) == pytest.approx(want["cost"] / len(problems))


def test_per_tier_split_equals_a_replay_run(world):
    _, bank, problems = world
    est = bank_estimate(PLAN, bank, problems, equivalence=EQ)
    assignments = [
        (p, s, tiers)
        for s in STRATEGIES
        for p, tiers in zip(problems, resolve_tiers(s, [None] * len(problems)), strict=True)
    ]
    rows, _, _, _ = execute(
        Prepared(PLAN, problems, assignments), ReplayBackend(bank), out=None, equivalence=EQ
    )
    for s in STRATEGIES:
        mine = rows[rows["strategy"] == s.key]
        samples = np.zeros(len(s.tiers))
        for recs in mine["tiers"]:
            for rec in recs:
                samples[int(rec["tier"])] += int(rec["k"])
        got = [t["samples_per_problem"] for t in est[s.key]["tiers"]]
        assert got == pytest.approx(list(samples / len(problems)))


def test_explain_bank_command(world, tmp_path):
    frame, bank, _ = world
    frame.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    write_bank(bank, tmp_path / "bank.parquet")
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml(("S", "L")))
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: c\nmodels: reg.yaml\ndefaults: {max_tokens: 48, prompt: raw}\nstrategy:\n  cascade:\n"
        '    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}\n    - {model: 3M}\n'
    )
    base = ["explain", str(tmp_path / "s.yaml")]
    res = runner.invoke(
        app, [*base, "--bank", str(tmp_path / "bank.parquet"), "--data", str(tmp_path / "p.jsonl")]
    )
    assert res.exit_code == 0, res.output
    assert "measured on 150 bank problems" in res.output and "escalated" in res.output
    assert "assuming" not in res.output
    half = runner.invoke(app, [*base, "--bank", str(tmp_path / "bank.parquet")])
    assert half.exit_code == 2 and "--bank and --data" in half.output
