"""Grader timeouts are visible: flagged on the problem row, counted in the manifest, shown in the summary."""

import json

import pandas as pd

from cascadec.api import execute, prepare
from cascadec.runtime import equivalence
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.equivalence import Equivalence, Verdict
from cascadec.runtime.progress import summary_tables
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier


def test_ungraded_pairs_are_flagged_counted_and_shown(tmp_path):
    slow_a, slow_b = "x^{x^{x^{x}}}+1", "y^{y^{y^{y}}}+2"  # stand-ins for power towers
    for key in ((slow_a, slow_b), (slow_b, slow_a)):  # as if math-verify had timed out on them
        equivalence._remember(key, Verdict.UNGRADED)
    plan = make_plan([strategy("mv", [tier("S", 4)])], {"S": 1.0})
    bank = bank_from_answers(
        {("S", "p0"): [slow_a, slow_b, slow_a, slow_a], ("S", "p1"): ["3", "3", "3", "3"]}
    )
    frame = pd.DataFrame({"id": ["p0", "p1"], "problem": ["a", "b"], "answer": [slow_a, "3"]})
    problems, *_ = execute(
        prepare(plan, frame), ReplayBackend(bank), out=tmp_path / "out", equivalence=Equivalence("math")
    )
    assert list(problems["ungraded"]) == [True, False]
    totals = json.loads((tmp_path / "out" / "manifest.json").read_text())["totals"]
    assert totals["ungraded_problems"] == 1
    caption = summary_tables(problems, {})[1].caption
    assert "1 problem(s)" in caption and "could not decide in time" in caption
