"""The vectorised simulator: many configurations × many problems at once, with numpy.

Two evaluators share the tables, prefix sums, vote and signals (:mod:`.tables`, :mod:`.tally`):
configurations whose tiers decide on their own samples (plain threshold cascades, with or
without early stopping) go through :mod:`.sweep`, which measures each (stream, k) tier once per
bank and evaluates thresholds as comparisons over arrays of problems; every other configuration
(retries, explorations, budgets, adaptive k, pooled answers) runs the runtime's job state
machine over arrays (:mod:`.machine`). Either way the decisions are the runtime's (the property
tests in ``tests/property/test_sim_vector.py`` compare both with replay runs and with each
other). Problems whose answers do not form a clean equivalence partition are left to the exact
path by the caller.
"""

from __future__ import annotations

import numpy as np

from cascadec.plan import PlanStrategy
from cascadec.sim.arrays import BankArrays
from cascadec.sim.machine import Machine
from cascadec.sim.sweep import Sweep, sweepable
from cascadec.sim.tables import REASONS, OutcomeArrays, Tables

__all__ = ["REASONS", "OutcomeArrays", "simulate_vector"]

CHUNK_ELEMENTS = 250_000  # the machine's configurations × problems per pass: bounds its memory


def simulate_vector(
    strategies: list[PlanStrategy], arrays: BankArrays, *, general_only: bool = False
) -> OutcomeArrays:
    """Run every strategy over every problem of ``arrays`` (exact_only problems included: callers
    replace those with the exact path's results). ``general_only`` sends every strategy through
    the state machine (the property tests compare the two paths with it)."""
    strategies = list(strategies)
    C, P = len(strategies), len(arrays.problems)
    tables = Tables(strategies, arrays)  # checks every stream the strategies ask for, in order
    out = OutcomeArrays.empty(C, P, tables.T)
    quick = np.array(
        [c for c, s in enumerate(strategies) if sweepable(s) and not general_only], dtype=np.int64
    )
    general = set(range(C)) - set(quick.tolist())
    if quick.size:
        general |= set(Sweep(arrays).run(tables, quick, out))
    rest = sorted(general)
    per = max(1, CHUNK_ELEMENTS // max(1, P))
    for i in range(0, len(rest), per):
        rows = rest[i : i + per]
        chunk = [strategies[c] for c in rows]
        out.put(rows, Machine(Tables(chunk, arrays), arrays, chunk).run())
    return out
