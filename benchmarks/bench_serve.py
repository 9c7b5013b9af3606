"""`cascadec serve` under load: N concurrent clients x M requests, against the batch path and
against calling the largest model's endpoint directly.

Real parts only, on loopback: `vllm serve` endpoints of two zoo models (started by
runtime/launch_vllm_serve.sh), `cascadec serve` over them (a subprocess), and N clients as
N asyncio tasks of one aiohttp load process (the lightest client at hand, as in vLLM's own
serving benchmark: on 2 cores the load generator's CPU is taken from the system under test),
each sending M requests of distinct held-out problems in turn to `/v1/completions`.

Like for like: the same problems, the same cascade, the same engines (the same `vllm serve`
endpoints, already loaded on both sides: `cascadec run`'s per-model load is an HTTP model
listing), the same concurrency towards each endpoint (at most 64 asks in flight: `cascadec
serve --max-batch 64`, the OpenAI backend's `concurrency=64` for `cascadec run`). The clients
are many (128, two problems each: half the table at once; `cascadec run` takes the whole table
at once), so batching can work on both sides. Requests carry the run's problem ids, so both
draw the same samples; the share of equal answers is reported. Warm-up is excluded on both sides: one untimed pass of every
problem through each path first (compiled names, connections, the engines' caches). Then
five timed rounds, interleaved in the order serve, run, run, serve, serve, run ... (the machine
is shared, so load drifts while we measure), and the median of each side; the CPU seconds each
process tree (each endpoint, the server, this process) used in every round are recorded beside
them, which is what says where a round's time went. Figure:
``serve_throughput_ratio`` = serve requests/s / run problems/s; latencies p50/p99 beside it
(absolute, machine-dependent), and the largest model's endpoint called directly by the same
clients. Last, with the endpoints stopped, the same clients against `cascadec serve --engines
local` (the server's own vLLM engines, one per zoo model, sharing the cores): absolute only,
since `cascadec run`'s offline backend holds one model at a time and would reload them.

    python benchmarks/bench_serve.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "runtime" / "launch_vllm_serve.sh"
CASCADE = "mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0"
LARGEST = "cascadec-zoo/arith-1.1M"
DRAW_SEED = 97531
IN_FLIGHT = 64  # asks in flight per endpoint at most, on both sides
answers: dict[int, dict] = {}  # problem index -> the last served response's cascade field


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_endpoints(state: Path) -> tuple[Path, dict]:
    env = {**os.environ, "MODELS": "0.034M,1.1M", "PORT": str(free_port()), "STATE_DIR": str(state)}
    env |= {"WAIT_S": "600", "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", str(ROOT / "specs" / "models" / "zoo.yaml")],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True)
        raise SystemExit(f"vllm serve did not start:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return state / "endpoints.json", env


def pid_lines(env: dict) -> list[str]:
    """``PID MODEL`` lines of the endpoints the launcher started."""
    pids = Path(env["STATE_DIR"]) / "pids"
    return [line for line in pids.read_text().splitlines() if line.strip()] if pids.exists() else []


def start_server(endpoints: Path | None, log: Path) -> tuple[subprocess.Popen, str]:
    """`cascadec serve` over the endpoints, or with its own engines (``endpoints`` None)."""
    port = free_port()
    engines = ["--endpoints", str(endpoints)] if endpoints else ["--engines", "local"]
    cmd = [sys.executable, "-m", "cascadec", "serve", "--models", "zoo", *engines]
    cmd += ["--port", str(port), "--log-level", "warning", "--max-concurrency", "256"]
    cmd += ["--max-batch", str(IN_FLIGHT) if endpoints else "256"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"cascadec serve exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("cascadec serve did not become healthy")


def load(clients: int, per_client: int, url: str, body) -> dict:
    """``clients`` asyncio tasks, each POSTing ``body(i)`` to ``url`` for its ``per_client`` requests in turn.

    The load generator is aiohttp (as vLLM's own serving benchmark): on a 2-core machine the
    clients' CPU is taken from the system under test, so they should spend as little as
    possible. The tests use the official OpenAI client.
    """
    import aiohttp

    async def every() -> list[list[float]]:
        limits = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=limits, timeout=timeout) as http:

            async def client(c: int) -> list[float]:
                out = []
                for i in range(per_client):
                    t0 = time.perf_counter()
                    async with http.post(url, json=body(c * per_client + i)) as r:
                        got = await r.json()
                        if r.status != 200:
                            raise SystemExit(f"{url} answered {r.status}: {got}")
                    if "cascade" in got:
                        answers[c * per_client + i] = got["cascade"]
                    out.append(time.perf_counter() - t0)
                return out

            return await asyncio.gather(*(client(c) for c in range(clients)))

    t0 = time.perf_counter()
    latencies = sorted(x for xs in asyncio.run(every()) for x in xs)
    wall = time.perf_counter() - t0
    return {
        "requests": len(latencies),
        "seconds": round(wall, 3),
        "req_per_s": round(len(latencies) / wall, 3),
        "p50_s": round(statistics.median(latencies), 4),
        "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 4),
    }


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each root process and its descendants that
    are not under another root (Linux ``/proc``; empty elsewhere): where a round's CPU went.

    A process counts for its nearest root, so the server (a child of this process) is counted
    as the server, not also as this process.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    parent, used = {}, {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    name_of = {pid: name for name, pid in roots.items()}
    out = dict.fromkeys(roots, 0.0)
    for pid, seconds in used.items():
        p = pid
        while p not in name_of and p > 1 and p in parent:
            p = parent[p]
        if p in name_of:
            out[name_of[p]] += seconds
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 3) for k in after}


def median_by(rounds: list[dict], key: str) -> dict:
    """The round whose ``key`` is the median (the lower middle one for an even count)."""
    return sorted(rounds, key=lambda r: r[key])[(len(rounds) - 1) // 2]


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    import cascadec
    from cascadec.runtime.backends.openai_http import OpenAIBackend
    from cascadec.zoo.task import sample_problems

    clients, per_client, rounds = (4, 2, 1) if args.smoke else (128, 2, 5)
    problems = sample_problems(clients * per_client, DRAW_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        endpoints, env = start_endpoints(folder / "vllm-serve")
        server = None
        try:
            server, url = start_server(endpoints, folder / "serve.log")

            def via_serve(i: int) -> dict:
                p = problems[i]
                return {"model": CASCADE, "prompt": p["problem"], "problem_id": p["id"]}

            def direct(i: int) -> dict:
                return {
                    "model": LARGEST,
                    "prompt": problems[i]["problem"],
                    "temperature": 0,
                    "max_tokens": 128,
                }

            largest_url = json.loads(endpoints.read_text())[LARGEST] + "/completions"
            frame = pd.DataFrame(problems)
            backend = OpenAIBackend(endpoints=endpoints, concurrency=IN_FLIGHT)

            def batch_run() -> tuple[dict, pd.DataFrame]:
                t0 = time.perf_counter()
                out = cascadec.run(CASCADE, frame, backend=backend, models="zoo", progress=False)
                wall = time.perf_counter() - t0
                return {"seconds": round(wall, 3), "req_per_s": round(len(frame) / wall, 3)}, out

            # warm-up, untimed: both paths see every problem once
            load(clients, per_client, f"{url}/v1/completions", via_serve)
            _, out = batch_run()
            # CPU per process tree during each round: the endpoints (launcher's pids file), the
            # server, and this process (the load generator on the serve side, `cascadec run` on
            # the other)
            roots = {line.split(" ", 1)[1]: int(line.split(" ", 1)[0]) for line in pid_lines(env)}
            roots |= {"cascadec serve": server.pid, "this process": os.getpid()}
            serves, runs, serve_cpu, run_cpu = [], [], [], []
            for r in range(rounds):  # serve, run | run, serve | serve, run ...
                for side in ("serve", "run") if r % 2 == 0 else ("run", "serve"):
                    before = cpu_seconds(roots)
                    if side == "serve":
                        serves.append(load(clients, per_client, f"{url}/v1/completions", via_serve))
                    else:
                        runs.append(batch_run()[0])
                    cpu = cpu_delta(before, cpu_seconds(roots))
                    (serve_cpu if side == "serve" else run_cpu).append(cpu)
            largest = load(clients, per_client, largest_url, direct)
            backend.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True)
    # the same clients against `cascadec serve --engines local` (its own vLLM engines, one per
    # zoo model, sharing the cores): absolute, beside the figure
    served = dict(answers)
    answers.clear()
    locals_ = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(None, Path(tmp) / "serve-local.log")
        try:
            load(clients, per_client, f"{url}/v1/completions", via_serve)  # warm-up
            locals_ = [load(clients, per_client, f"{url}/v1/completions", via_serve) for _ in range(rounds)]
        finally:
            server.terminate()
            server.wait(60)
    serve = median_by(serves, "req_per_s")
    run = median_by(runs, "req_per_s")
    own = [c.get("cascadec serve") for c in serve_cpu if c.get("cascadec serve") is not None]
    per_request_ms = round(1000 * statistics.mean(own) / (clients * per_client), 2) if own else None
    same = sum(served[i]["final_answer"] == a for i, a in enumerate(out["cascade_final_answer"]))
    same_local = sum(
        answers.get(i, {}).get("final_answer") == a for i, a in enumerate(out["cascade_final_answer"])
    )
    accuracy = sum(served[i]["final_answer"] == p["answer"] for i, p in enumerate(problems)) / len(problems)
    escalated = sum(a["escalated"] for a in served.values()) / len(served)
    absolute = {
        "clients": clients,
        "requests_per_client": per_client,
        "rounds": rounds,
        "serve": serve | {"accuracy": round(accuracy, 4), "escalated": round(escalated, 4)},
        "serve_rounds_req_per_s": [x["req_per_s"] for x in serves],
        "run_rounds_req_per_s": [x["req_per_s"] for x in runs],
        "serve_answers_equal_to_run": round(same / len(problems), 4),
        "largest_direct": largest,
        "run": run | {"problems": len(problems), "accuracy": round(float(out["cascade_correct"].mean()), 4)},
        "serve_vs_largest_direct_throughput": round(serve["req_per_s"] / largest["req_per_s"], 4),
        "serve_local_engines": median_by(locals_, "req_per_s"),
        "serve_local_rounds_req_per_s": [x["req_per_s"] for x in locals_],
        "serve_local_answers_equal_to_run": round(same_local / len(problems), 4),
        # CPU seconds per process tree in each timed round (see cpu_seconds)
        "serve_rounds_cpu_s": serve_cpu,
        "run_rounds_cpu_s": run_cpu,
        "cascadec_serve_cpu_ms_per_request": per_request_ms,
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(absolute, indent=2))
    emit(args, {"serve_throughput_ratio": round(serve["req_per_s"] / run["req_per_s"], 4)}, absolute)


if __name__ == "__main__":
    main()
