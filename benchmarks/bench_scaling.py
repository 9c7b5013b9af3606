"""How replay runs and simulations grow with the problem count.

A synthetic bank (two zoo models: k=4 samples of the smallest at T=0.7, one greedy answer of
the largest; the small model right on ~60% of problems, as on the zoo) is replayed with a
two-tier cascade (`cascadec run --backend replay`) and simulated (`cascadec simulate`, the
same cascade, bank and data) at 10^3, 10^4 and 10^5 problems. Reported per size and command:
wall seconds and peak memory of the whole process, and seconds per 1,000 problems — which must
stay flat. The linearity check fits the growth exponent between the two largest sizes (where
start-up no longer dominates): time ∝ n^e, linear when e ≤ 1.15 (memory likewise, on what a
process holds beyond the smallest size's peak). No engine runs: this measures cascadec's own cost.

    python benchmarks/bench_scaling.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import json
import math
import random
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


LINEAR_EXPONENT = 1.15  # growth exponent up to which a curve counts as linear (timing noise)
COMMANDS = {
    "replay": lambda data, bank, out: ["run", "--marker", MARKER, "--data", str(data), "--backend", "replay",
                                       "--bank", str(bank), "--models", "zoo", "--out", str(out), "--no-progress"],
    "simulate": lambda data, bank, out: ["simulate", MARKER, "--data", str(data), "--bank", str(bank),
                                         "--models", "zoo", "--json", str(out) + ".json"],
}  # fmt: skip


def measure(command: str, data: Path, bank: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one cascadec process (a fresh process: its own peak)."""
    wrapper = (
        "import resource, runpy, sys; sys.argv = ['cascadec', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('cascadec', run_name='__main__')\n"
        "finally:\n    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *COMMANDS[command](data, bank, out)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = [line for line in proc.stderr.splitlines() if line.startswith("PEAK ")]
    return seconds, int(peak[-1].split()[1]) / 1024 if peak else float("nan")


def exponent(rows: list[dict], key: str, base: float = 0.0) -> float:
    """Growth exponent of ``key`` between the two largest sizes (``base`` subtracted first)."""
    (a, b) = rows[-2:]
    ya, yb = max(a[key] - base, 1e-9), max(b[key] - base, 1e-9)
    return round(math.log(yb / ya) / math.log(b["problems"] / a["problems"]), 3)


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    sizes = [200, 2000] if args.smoke else [1_000, 10_000, 100_000]
    table: dict[str, list[dict]] = {command: [] for command in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            data, bank = synthetic(n, Path(tmp))
            for command, rows in table.items():
                seconds, peak = measure(command, data, bank, Path(tmp) / f"{command}_{n}")
                rows.append({"problems": n, "seconds": round(seconds, 2), "seconds_per_1000": round(1000 * seconds / n, 3), "peak_rss_mib": round(peak, 1)})  # fmt: skip
                print(
                    f"{command:8} {n:>7,} problems: {seconds:8.2f} s  {1000 * seconds / n:7.3f} s/1k  "
                    f"peak {peak:8.1f} MiB"
                )
    absolute: dict = dict(table)
    for command, rows in table.items():
        # memory beyond the smallest size's peak (interpreter, imports: held at any size)
        start = rows[0]["peak_rss_mib"] if len(rows) > 2 else 0.0
        check = {
            "time_exponent": exponent(rows, "seconds"),
            "memory_exponent": exponent(rows, "peak_rss_mib", base=start),
        }
        check["linear"] = max(check.values()) <= LINEAR_EXPONENT
        absolute[f"{command}_linearity"] = check
        print(f"{command:8} growth exponents (two largest sizes): {check}")
    emit(args, {}, absolute)


if __name__ == "__main__":
    main()
