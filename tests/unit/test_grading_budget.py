"""A per-problem grading budget: adversarial answers cannot make one problem's grading unbounded.

Power towers cost math-verify seconds per pair (sympy stuck in big-integer C code until the
worker is killed); a vote over k distinct towers has k(k-1) ordered pairs. With a budget, the
problem's grading ends within the budget plus one pair timeout per worker, its remaining pairs
are left ungraded, and the run records and shows it.
"""

import json
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from cascadec.api import execute, prepare
from cascadec.cli import app
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.equivalence import Equivalence, Verdict
from cascadec.runtime.progress import summary_tables
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier
from cascadec.runtime.verify_pool import Workers

TOWERS = [f"{d}^{{{d}^{{{d}^{{{d}^{{{d}}}}}}}}}+{d}" for d in range(3, 9)]  # 6 distinct, 30 pairs
PAIR_COST = 1 + Workers.MARGIN  # the most one pair is charged: timeout + the parent's margin


def _bound(budget: float, eq: Equivalence) -> float:
    """What one problem's grading may take: the budget, then the pairs already in flight."""
    return budget + PAIR_COST * 4 + Workers.STARTUP_GRACE / 4  # generous for a busy CI machine


def test_budget_leaves_remaining_pairs_ungraded_and_names_the_owner():
    eq = Equivalence(timeout=1, budget=1.0)
    eq.warm_up()
    start = time.monotonic()
    pairs = [(a, b) for i, a in enumerate(TOWERS) for b in TOWERS[i + 1 :]]
    eq.prepare_owned([("p0", pairs), ("p1", [("1/2", "0.5000001")])], both_ways=True)
    took = time.monotonic() - start
    assert took < _bound(1.0, eq), took
    assert eq.is_over_budget("p0") and not eq.is_over_budget("p1")
    assert eq.pairs_over_budget > 0
    assert eq.pairs_verified + eq.pairs_over_budget == 2 * len(pairs) + 2
    assert eq.spent["p0"] >= 1.0
    # a skipped pair stays ungraded: clustering and grading never grade it unbounded afterwards
    skipped = next(p for p in pairs if eq.was_ungraded(*p))
    before = eq.pairs_verified
    assert eq.verify(*skipped) is Verdict.UNGRADED or eq.verify(skipped[1], skipped[0]) is Verdict.UNGRADED
    eq.prepare([skipped], both_ways=True)  # an ownerless prepare (a vote's own) does not either
    assert eq.pairs_verified == before


def test_a_run_with_power_tower_votes_finishes_within_the_bound(tmp_path):
    plan = make_plan([strategy("mv", [tier("S", 6)])], {"S": 1.0})
    bank = bank_from_answers({("S", "p0"): TOWERS, ("S", "p1"): ["3", "3", "3", "3", "3", "4"]})
    frame = pd.DataFrame({"id": ["p0", "p1"], "problem": ["a", "b"], "answer": ["7", "3"]})
    eq = Equivalence("math", timeout=1, budget=1.0)
    eq.warm_up()
    start = time.monotonic()
    problems, *_ = execute(prepare(plan, frame), ReplayBackend(bank), out=tmp_path / "out", equivalence=eq)
    assert time.monotonic() - start < _bound(1.0, eq) + 10  # the replay itself: well under 10 s
    assert list(problems["grading_over_budget"]) == [True, False]
    assert list(problems["ungraded"]) == [True, False]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["totals"]["over_budget_problems"] == 1
    assert manifest["totals"]["pairs_over_budget"] == eq.pairs_over_budget > 0
    assert manifest["run"]["grading_budget"] == 1.0 and manifest["run"]["grader_timeout"] == 1
    caption = summary_tables(problems, {})[1].caption
    assert "1 problem(s) used up their grading budget" in caption


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "abc"])
def test_cli_refuses_a_bad_budget(tmp_path, value):
    data = tmp_path / "p.jsonl"
    data.write_text('{"id": "a", "problem": "1+1", "answer": "2"}\n')
    result = CliRunner().invoke(
        app, ["run", "--marker", "S", "--data", str(data), "--dry-run", "--grading-budget", value]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "grading-budget" in result.output


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf")])
def test_api_refuses_a_bad_budget(budget):
    with pytest.raises(ValueError, match="grading budget"):
        Equivalence(budget=budget)
