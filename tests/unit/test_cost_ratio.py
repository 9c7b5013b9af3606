"""One cost ratio (issue 23 item 2): total cost of the strategy over total cost of the same
reference (the largest model answering greedily) on the same problems — explain --bank states
it in that unit, its tiers' shares adding up to it."""

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.compiler import compile_marker
from cascadec.plan import Plan, seal
from cascadec.runtime.backends.replay import write_bank
from cascadec.runtime.equivalence import Equivalence
from cascadec.sim.bank import load_bank
from cascadec.sim.estimate import bank_estimate
from cascadec.sim.reference import reference_strategy
from cascadec.sim.simulate import problems_for, simulate
from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

runner = CliRunner()
CASCADE = "mv_cascade_0.1M_k4_t0.7_3M_k1_t0.0"


@pytest.fixture
def files(tmp_path):
    problems = synthetic_problems(100, seed=3)
    problems.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=4, temperatures=(0.7,), seed=3), tmp_path / "bank.parquet")
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    return tmp_path


def test_explain_bank_states_the_cost_ratio_and_its_tiers_add_up_to_it(files):
    plan, _ = compile_marker(CASCADE, str(files / "reg.yaml"))
    bank = load_bank(files / "bank.parquet")
    frame = synthetic_problems(100, seed=3)
    problems = problems_for(plan, frame)
    eq = Equivalence("math")
    ref, ref_plan = reference_strategy(plan)
    both = seal(Plan(models={**ref_plan.models, **plan.models}, strategies=(*plan.strategies, ref)))
    sim = simulate(both, bank, problems, equivalence=eq)
    want = sim.summary(0)["cost"] / sim.summary(1)["cost"]
    got = bank_estimate(plan, bank, problems, equivalence=eq)[CASCADE]
    assert got["reference"] == "3M greedy" and got["cost_ratio"] == pytest.approx(want)
    assert sum(t["cost_ratio"] for t in got["tiers"]) == pytest.approx(want)

    common = [
        "--models",
        str(files / "reg.yaml"),
        "--bank",
        str(files / "bank.parquet"),
        "--data",
        str(files / "p.jsonl"),
    ]
    res = runner.invoke(app, ["explain", "--marker", CASCADE, *common])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.stdout.split())
    assert f"cost_ratio {want:.4f} (total cost / total cost of 3M greedy on the same problems" in flat
    header = next(line for line in res.stdout.splitlines() if line.startswith("┃"))
    assert "cost_ratio" in header
    rows = [line.split("│") for line in res.stdout.splitlines() if line.startswith("│")]
    assert sum(float(r[-3]) for r in rows[:2]) == pytest.approx(want, abs=2e-4)
