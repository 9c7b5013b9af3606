"""One signal registry (issue 21, item 3): every list of signal names is derived from
``cascadec.core.signals.SIGNALS``, and a signal added in one place — its row and its computation —
is found in conditions, the compiler, simulations (exactly equal to replay runs), run records and
reports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from cascadec.core.conditions import parse_condition
from cascadec.core.signals import (
    CONFIDENCE_SCALES,
    LADDER_SIGNALS,
    SIGNALS,
    SIMULATED_SIGNALS,
    TIER_SIGNALS,
    Scale,
    Scope,
    SignalInfo,
    signals_with,
)
from cascadec.runtime.signals import COMPUTATIONS
from cascadec.sim.tally import signals as array_signals

ROOT = Path(__file__).resolve().parents[2]


def test_every_signal_has_one_computation():
    assert list(COMPUTATIONS) == [n for n in COMPUTATIONS if n in SIGNALS]
    assert set(COMPUTATIONS) == set(SIGNALS)


def test_the_arrays_measure_every_simulated_signal():
    """tally measures the tier's own signals; the machine adds what reads the ladder or the route."""
    rows, classes = 2, 3
    ints = np.ones(rows, dtype=np.int64)
    measured = array_signals(
        ints,
        np.ones((rows, classes), dtype=np.int64),
        ints,
        ints * 0,
        ints,
        (np.zeros(rows), ints, np.zeros(rows), ints),
        ints,
        np.zeros((8, 8)),
    )
    added = set(LADDER_SIGNALS) | set(signals_with(lambda i: i.scope is Scope.PROBLEM))
    assert set(measured) | added == set(SIMULATED_SIGNALS)


def test_the_views_follow_the_table(monkeypatch):
    row = SignalInfo("a toy", 0.0, 1.0, "real", Scale.PROBABILITY, simulated=False)
    assert "toy" not in TIER_SIGNALS and "toy" not in CONFIDENCE_SCALES
    monkeypatch.setitem(SIGNALS, "toy", row)
    assert "toy" in TIER_SIGNALS and "toy" not in SIMULATED_SIGNALS
    assert CONFIDENCE_SCALES["toy"] is Scale.PROBABILITY
    assert parse_condition("toy < 0.5 or agreement < 1").signals() <= TIER_SIGNALS
    assert not parse_condition("toy < 0.5").signals() <= SIMULATED_SIGNALS
    assert {"agreement", "toy"} - SIMULATED_SIGNALS == {"toy"}


# Run in a fresh interpreter: the row goes in before anything is derived from the table (as it
# would if written in cascadec/core/signals.py), and this test process keeps the real registry.
TOY = textwrap.dedent(
    """
    import math, sys
    from pathlib import Path

    # --- the one place: the signal's row and its computation ---------------------------------
    from cascadec.core.signals import SIGNALS, Scale, SignalInfo

    SIGNALS["even_share"] = SignalInfo(
        "share of the tier's samples whose answer is an even number", 0.0, 1.0, "real",
        Scale.PROBABILITY, simulated=False,
    )

    from cascadec.runtime.signals import COMPUTATIONS

    def even_share(tier):
        even = [s for s in tier.samples if s.answer is not None and s.answer.isdigit() and int(s.answer) % 2 == 0]
        return len(even) / max(tier.k, 1)

    COMPUTATIONS["even_share"] = even_share

    # --- nothing else: the ordinary API from here on --------------------------------------------
    import pandas as pd
    from cascadec.compiler import compile_spec_data
    from cascadec.errors import CascadecError
    from cascadec.api import prepare
    from cascadec.report.build import build_report
    from cascadec.runtime.backends.replay import ReplayBackend
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.runtime.records import Signals
    from cascadec.runtime.results import load_results
    from cascadec.runtime.session import execute
    from cascadec.sim.simulate import needs_token_records, problems_for, simulate
    from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml
    from cascadec.sim.vector import REASONS

    tmp = Path(sys.argv[1])
    (tmp / "reg.yaml").write_text(synthetic_registry_yaml(), encoding="utf-8")

    def spec(condition):
        return {
            "version": 1,
            "name": "toy_cascade",
            "models": "reg.yaml",
            "strategy": {"cascade": [
                {"model": "0.1M", "k": 4, "temperature": 0.7, "escalate_if": condition},
                {"model": "3M"},
            ]},
        }

    # conditions: the compiler knows it, suggests it, and proves its range
    plan, _ = compile_spec_data(spec("even_share < 0.5"), base_dir=tmp)
    for bad, expect in [("even_shar < 0.5", "did you mean even_share"), ("even_share > 1", "E4")]:
        try:
            compile_spec_data(spec(bad), base_dir=tmp)
        except CascadecError as exc:
            assert expect in str(exc), str(exc)
        else:
            raise AssertionError(f"{bad!r} compiled")

    # simulation: exactly what the replay run decides (the runtime's exact path: simulated=False)
    problems = synthetic_problems(30, seed=5)
    bank = synthetic_bank(problems, k=8, temperatures=(0.7,), seed=5)
    eq = Equivalence("exact")
    assert needs_token_records(plan.strategies[0])
    sim = simulate(plan, bank, problems_for(plan, problems), equivalence=eq)
    rows, *_ = execute(prepare(plan, problems), ReplayBackend(bank), out=tmp / "run", equivalence=eq)
    o = sim.outcome
    for j, r in enumerate(rows.itertuples(index=False)):
        assert o.samples[0, j] == r.samples and o.tiers_used[0, j] == r.tiers_used, r.id
        assert round(float(o.cost[0, j]), 6) == r.cost and REASONS[o.reason[0, j]] == r.stop_reason
        assert o.correct[0, j] == float(bool(r.correct))
    used = set(o.tiers_used[0].tolist())
    assert used == {1, 2}, f"the toy signal should move decisions: {used}"

    # run records: a field of the tier's signals, the value its computation gives
    assert "even_share" in Signals.model_fields
    recorded = load_results(tmp / "run")
    first = [t[0]["signals"]["even_share"] for t in recorded["tiers"]]
    assert all(v is not None and 0.0 <= v <= 1.0 for v in first), first

    # reports: a confidence signal (it has a scale) gets a reliability row
    report = build_report([tmp / "run"], tmp / "report").read_text(encoding="utf-8")
    assert "| even_share |" in report.replace("|  ", "| "), report
    print("ok")
    """
)


def test_a_toy_signal_added_in_one_place_is_everywhere(tmp_path):
    script = tmp_path / "toy.py"
    script.write_text(TOY, encoding="utf-8")
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
