"""Lint throughput, whole process: `cascadec lint` on a 100k-row table column.

Two tables: a realistic one (a research group's results table repeats a few dozen strategies
over every problem) and one of 100k distinct markers (the worst case: nothing to reuse). Time
is the whole `python -m cascadec lint` process — start-up, import, reading, parsing, checking,
printing — as a user or CI hook pays it.

    python benchmarks/bench_lint.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

STRATEGIES = [
    "1.5B",
    "7B",
    "72B",
    "Qwen/Qwen2.5-Math-72B-Instruct",
    "mv_1.5B_k4_t0.7",
    "mv_1.5B_k8_t0.7",
    "mv_1.5B_k16_t0.7",
    "mv_7B_k4_t0.7",
    "mv_7B_k8_t0.7",
    "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0",
    "mv_cascade_1.5B_k8_t0.7_7B_k4_t0.7_72B_k1_t0.0",
    "mv_cascade_1.5B_k4_t0.7_72B_k1_t0.0",
    "mv_cascade_7B_k5_t0.7_72B_k1_t0.0",
    "mv_entropy_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0",
    "mv_entropy_cascade_1.5B_k8_t1.0_7B_k4_t0.7_72B_k1_t0.0",
]


def realistic(n: int, rng: random.Random) -> list[str]:
    return [rng.choice(STRATEGIES) for _ in range(n)]


def distinct(n: int, rng: random.Random) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        k1, k2 = rng.randint(1, 64), rng.randint(1, 64)
        t1, t2 = rng.randint(1, 20) / 10, rng.randint(1, 20) / 10
        seen[f"mv_cascade_1.5B_k{k1}_t{t1}_7B_k{k2}_t{t2}_72B_k1_t0.0"] = None
    return list(seen)


def lint_rate(markers: list[str], folder: Path, name: str) -> tuple[float, float]:
    table = folder / f"{name}.csv"
    table.write_text("id,strategy\n" + "".join(f"{i},{m}\n" for i, m in enumerate(markers)))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cascadec", "lint", str(table), "--column", "strategy"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lint failed on {name} (exit {proc.returncode}): {proc.stderr[-500:]}")
    return len(markers) / seconds, seconds


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 2_000 if args.smoke else 100_000
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        rate, seconds = lint_rate(realistic(n, rng), Path(tmp), "realistic")
        drate, dseconds = lint_rate(distinct(n, rng), Path(tmp), "distinct")
    emit(
        args,
        {"lint_markers_per_s": round(rate), "lint_distinct_markers_per_s": round(drate)},
        {
            "rows": n,
            "realistic_seconds": round(seconds, 3),
            "distinct_seconds": round(dseconds, 3),
            "peak_rss_mib": peak_rss_mib(),
        },
    )


if __name__ == "__main__":
    main()
