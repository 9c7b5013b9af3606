"""Vectorised simulation throughput: configuration × problem evaluations per second.

A threshold × k × early-stop × final-answer sweep of a three-tier cascade (1,600 configurations,
every one a different plan strategy) over a synthetic bank of 10,000 problems, through
``cascadec.sim.vector.simulate_vector`` — what `cascadec simulate`, `calibrate` and `optimize`
run. The bank's arrays are built once (as calibrate does); configurations go in batches, each
reduced to its accuracy and mean cost as a sweep would. The figure is evaluations over the wall
time of all batches (simulation and reduction); one warm-up call first builds the condition
grammar's parser, a once-per-process cost.

    python benchmarks/bench_simulate.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

from cascadec.plan import EarlyStop  # noqa: E402
from cascadec.runtime.equivalence import Equivalence  # noqa: E402
from cascadec.runtime.testing import make_plan, strategy, tier  # noqa: E402
from cascadec.sim.arrays import build_arrays  # noqa: E402
from cascadec.sim.simulate import problems_for  # noqa: E402
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems  # noqa: E402
from cascadec.sim.vector import simulate_vector  # noqa: E402

BATCH = 200  # configurations per simulate_vector call


def sweep() -> list:
    out = []
    grid = itertools.product(
        (2, 3, 4, 6, 8),  # first-tier k
        (2, 4),  # second-tier k
        (0.5, 0.6, 0.75, 0.875, 1.0),  # agreement threshold
        (-0.5, -0.3, -0.2, -0.15, -0.1, -0.05, -0.02, -0.01),  # mean logprob threshold
        (None, 1),  # early stopping round size
        ("last_tier", "most_confident"),
    )
    for k, km, a, lp, es, fa in grid:
        cond = f"agreement < {a} or mean_logprob < {lp}"
        out.append(
            strategy(
                f"k{k}-m{km}-{a}-{lp}-{es}-{fa}",
                [
                    tier("S", k, escalate_if=cond, cost=1.0),
                    tier("M", km, escalate_if=cond, cost=4.0),
                    tier("L", 1, 0.0, cost=30.0),
                ],
                early_stop=EarlyStop(round_size=es) if es else None,
                final_answer=fa,
            )
        )
    return out


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 200 if args.smoke else 10_000
    frame = synthetic_problems(n, seed=1)
    bank = synthetic_bank(frame, k=8, temperatures=(0.7,), seed=1)
    configs = sweep()
    plan = make_plan(configs, SYNTHETIC_MODELS)
    problems = problems_for(plan, frame)
    arrays = build_arrays(bank, problems, plan, Equivalence("exact"))
    simulate_vector(configs[:1], arrays)  # warm-up: builds the condition parser (once per process)
    t0 = time.perf_counter()
    figures = []
    for i in range(0, len(configs), BATCH):
        o = simulate_vector(configs[i : i + BATCH], arrays)
        figures += zip(np.nanmean(o.correct, axis=1), o.cost.mean(axis=1), strict=True)
    seconds = time.perf_counter() - t0
    assert len(figures) == len(configs)
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
