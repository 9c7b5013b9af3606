"""`cascadec serve` under load: N concurrent clients x M requests, against the batch path and
against calling the largest model's endpoint directly.

Real parts only, on loopback: `vllm serve` endpoints of two zoo models (started by
runtime/launch_vllm_serve.sh), `cascadec serve` over them (a subprocess), and the official
OpenAI client in N threads, each sending M requests of distinct held-out problems. The same
problems then go (1) straight to the largest model's endpoint with the same N clients (greedy,
what the cascade's last tier asks), and (2) through `cascadec run` with the OpenAI backend on
the same endpoints (the batch path: every problem submitted at once), interleaved with the
serve rounds (best of two each: the machine is shared). Requests carry the run's problem ids,
so both draw the same samples; the share of equal answers is reported. Figure:
``serve_throughput_ratio`` = serve requests/s / run problems/s; latencies p50/p99 are reported
beside it (absolute, machine-dependent).

    python benchmarks/bench_serve.py [--smoke] [--json OUT]
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "runtime" / "launch_vllm_serve.sh"
CASCADE = "mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0"
LARGEST = "cascadec-zoo/arith-1.1M"
DRAW_SEED = 97531


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


def start_server(endpoints: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "cascadec", "serve", "--models", "zoo", "--endpoints", str(endpoints)]
    cmd += ["--port", str(port), "--log-level", "warning", "--max-concurrency", "256"]
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


def load(clients: int, per_client: int, one) -> dict:
    """``clients`` threads, each sending ``per_client`` requests in turn; throughput and latency."""

    def client(c: int) -> list[float]:
        out = []
        for i in range(per_client):
            t0 = time.perf_counter()
            one(c * per_client + i)
            out.append(time.perf_counter() - t0)
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for xs in pool.map(client, range(clients)) for x in xs]
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(wall, 3),
        "req_per_s": round(len(latencies) / wall, 3),
        "p50_s": round(statistics.median(latencies), 4),
        "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 4),
    }


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    import openai

    import cascadec
    from cascadec.runtime.backends.openai_http import OpenAIBackend
    from cascadec.zoo.task import sample_problems

    clients, per_client, rounds = (4, 2, 1) if args.smoke else (64, 4, 2)
    problems = sample_problems(clients * per_client, DRAW_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        endpoints, env = start_endpoints(folder / "vllm-serve")
        server = None
        try:
            server, url = start_server(endpoints, folder / "serve.log")
            api = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)
            answers: dict[int, dict] = {}

            def via_serve(i: int) -> None:
                p = problems[i]
                r = api.completions.create(
                    model=CASCADE, prompt=p["problem"], extra_body={"problem_id": p["id"]}
                )
                answers[i] = r.cascade

            for model in (CASCADE, "1.1M"):  # warm-up: compile the names, first call of each engine
                api.completions.create(model=model, prompt="1+1=")
            direct_api = openai.OpenAI(base_url=json.loads(endpoints.read_text())[LARGEST], api_key="EMPTY")

            def direct(i: int) -> None:
                direct_api.completions.create(
                    model=LARGEST, prompt=problems[i]["problem"], temperature=0, max_tokens=128
                )

            frame = pd.DataFrame(problems)
            backend = OpenAIBackend(endpoints=endpoints)

            def batch_run() -> tuple[float, pd.DataFrame]:
                t0 = time.perf_counter()
                out = cascadec.run(CASCADE, frame, backend=backend, registry="zoo", progress=False)
                return time.perf_counter() - t0, out

            # interleaved, best of `rounds`: the machine is shared, so load drifts while we measure
            serves, runs = [], []
            for _ in range(rounds):
                serves.append(load(clients, per_client, via_serve))
                runs.append(batch_run())
            largest = load(clients, per_client, direct)
            backend.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True)
    serve = max(serves, key=lambda x: x["req_per_s"])
    run_s, out = min(runs, key=lambda x: x[0])
    run_rate = len(problems) / run_s
    same = sum(answers[i]["final_answer"] == a for i, a in enumerate(out["cascade_final_answer"]))
    accuracy = sum(answers[i]["final_answer"] == p["answer"] for i, p in enumerate(problems)) / len(problems)
    escalated = sum(a["escalated"] for a in answers.values()) / len(answers)
    absolute = {
        "clients": clients,
        "requests_per_client": per_client,
        "serve": serve | {"accuracy": round(accuracy, 4), "escalated": round(escalated, 4)},
        "serve_rounds_req_per_s": [x["req_per_s"] for x in serves],
        "run_rounds_seconds": [round(x[0], 3) for x in runs],
        "serve_answers_equal_to_run": round(same / len(problems), 4),
        "largest_direct": largest,
        "run": {
            "problems": len(problems),
            "seconds": round(run_s, 3),
            "req_per_s": round(run_rate, 3),
            "accuracy": round(float(out["cascade_correct"].mean()), 4),
        },
        "serve_vs_largest_direct_throughput": round(serve["req_per_s"] / largest["req_per_s"], 4),
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(absolute, indent=2))
    emit(args, {"serve_throughput_ratio": round(serve["req_per_s"] / run_rate, 4)}, absolute)


if __name__ == "__main__":
    main()
