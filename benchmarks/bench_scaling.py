"""How replay runs (and simulations, once `cascadec simulate` exists) grow with the problem count.

A synthetic bank (two zoo models: k=4 samples of the smallest at T=0.7, one greedy answer of
the largest; the small model right on ~60% of problems, as on the zoo) is replayed with a
two-tier cascade at 10^3, 10^4 and 10^5 problems. Reported per size: wall seconds and peak
memory of the whole `cascadec run` process, and seconds per 1,000 problems — which must stay
flat (linear growth). No engine runs: this measures the runtime's own cost.

    python benchmarks/bench_scaling.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, script_args  # noqa: E402

SMALL, LARGE = "cascadec-zoo/arith-0.034M", "cascadec-zoo/arith-1.1M"
MARKER = "mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0"


def synthetic(n: int, folder: Path) -> tuple[Path, Path]:
    rng = random.Random(n)
    problems, bank = [], []
    for i in range(n):
        a, b = rng.randint(0, 9999), rng.randint(0, 9999)
        pid, gold = f"p{i}", str(a + b)
        problems.append({"id": pid, "problem": f"{a}+{b}=", "answer": gold})
        easy = rng.random() < 0.6
        for j in range(4):
            right = rng.random() < (0.95 if easy else 0.3)
            answer = gold if right else str(a + b + rng.choice([-10, -1, 1, 10, 100]))
            bank.append((SMALL, pid, j, 0.7, f"{a}+{b}=\\boxed{{{answer}}}", 8))
        bank.append((LARGE, pid, 0, 0.0, f"{a}+{b}=\\boxed{{{gold}}}", 8))
    data = folder / f"problems_{n}.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in problems))
    path = folder / f"bank_{n}.parquet"
    columns = ["model", "problem_id", "sample_index", "temperature", "text", "num_tokens"]
    pd.DataFrame(bank, columns=columns).to_parquet(path)
    return data, path


def replay(data: Path, bank: Path, out: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cascadec", "run", "--marker", MARKER, "--data", str(data), "--backend",
         "replay", "--bank", str(bank), "--models", "zoo", "--out", str(out), "--no-progress"],
        capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"replay failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    sizes = [200, 2000] if args.smoke else [1_000, 10_000, 100_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            data, bank = synthetic(n, Path(tmp))
            seconds, peak = replay(data, bank, Path(tmp) / f"run_{n}")
            rows.append({"problems": n, "seconds": round(seconds, 2), "seconds_per_1000": round(1000 * seconds / n, 3), "peak_rss_mib": round(peak, 1)})  # fmt: skip
            print(
                f"replay {n:>7,} problems: {seconds:8.2f} s  {1000 * seconds / n:7.3f} s/1k  peak {peak:8.1f} MiB"
            )
    emit(args, {}, {"replay": rows})


if __name__ == "__main__":
    main()
