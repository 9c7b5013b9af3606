"""Vectorised simulation throughput: configuration × problem evaluations per second.

A threshold × k sweep of a two-tier cascade (every configuration a different plan strategy)
over a synthetic bank, through ``cascadec.sim.vector.simulate_vector`` — the same state
machine `cascadec simulate` and `cascadec calibrate` run. The bank's arrays are built once
(as calibrate does); the figure is evaluations over the simulation's wall time.

    python benchmarks/bench_simulate.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

from cascadec.runtime.equivalence import Equivalence  # noqa: E402
from cascadec.runtime.testing import make_plan, strategy, tier  # noqa: E402
from cascadec.sim.arrays import build_arrays  # noqa: E402
from cascadec.sim.simulate import problems_for  # noqa: E402
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems  # noqa: E402
from cascadec.sim.vector import simulate_vector  # noqa: E402


def sweep() -> list:
    out = []
    for k in (2, 3, 4, 6, 8):
        for a in (0.5, 0.75, 1.0):
            for lp in (-0.5, -0.3, -0.2, -0.1, -0.05, -0.02):
                cond = f"agreement < {a} or mean_logprob < {lp}"
                out.append(
                    strategy(
                        f"k{k}-{a}-{lp}",
                        [
                            tier("S", k, escalate_if=cond, cost=1.0),
                            tier("M", 4, escalate_if=cond, cost=4.0),
                            tier("L", 1, 0.0, cost=30.0),
                        ],
                    )
                )
    return out


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 200 if args.smoke else 4000
    frame = synthetic_problems(n, seed=1)
    bank = synthetic_bank(frame, k=8, temperatures=(0.7,), seed=1)
    configs = sweep()
    plan = make_plan(configs, SYNTHETIC_MODELS)
    problems = problems_for(plan, frame)
    arrays = build_arrays(bank, problems, plan, Equivalence("exact"))
    t0 = time.perf_counter()
    simulate_vector(configs, arrays)
    seconds = time.perf_counter() - t0
    evals = len(configs) * n
    print(f"{len(configs)} configurations × {n} problems = {evals:,} evaluations in {seconds:.2f} s")
    emit(
        args,
        {"simulate_problem_configs_per_s": round(evals / seconds)},
        {
            "configurations": len(configs),
            "problems": n,
            "seconds": round(seconds, 3),
            "peak_rss_mib": peak_rss_mib(),
        },
    )


if __name__ == "__main__":
    main()
