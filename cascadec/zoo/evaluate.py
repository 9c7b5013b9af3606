"""Measure the zoo's ladder through the real runtime: ``cascadec zoo eval``.

The numbers come from one ``cascadec.run`` over the demo plan (every zoo model greedy and as a
k=4, T=0.7 majority vote, plus the demo cascade) on held-out problems, so they are measured by
exactly the code that runs users' cascades: the vLLM backend, answer extraction, voting over
equivalent answers. From the result frame we report what the demo depends on: greedy accuracy
per difficulty bucket, majority-vote accuracy, how well the vote's agreement separates right
from wrong answers (AUROC), and the cascade's accuracy, escalation rate and cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cascadec.zoo.demo_plan import DemoPlan, build_demo, demo_spec_path

# Targets the issue sets for the ladder (README, "Model zoo").
SMALLEST_GREEDY = (0.50, 0.80)
SMALLEST_EASIEST_BUCKET = 0.95
LARGEST_GREEDY = 0.97
SMALLEST_VOTE_AUROC = 0.80


def auroc(scores: pd.Series, positives: pd.Series) -> float:
    """Area under the ROC curve of ``scores`` for ``positives`` (ties count one half).

    The Mann-Whitney form: the chance that a random positive outscores a random negative.
    """
    positives = positives.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = scores.rank(method="average")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def first_agreement(tiers: pd.Series) -> pd.Series:
    """Agreement of each problem's first tier, from the nested ``tiers`` column."""
    first = tiers.list[0].struct.field("signals").struct.field("agreement")
    return first.astype("float64").fillna(0.0)


@dataclass
class ModelLadder:
    """One zoo model alone: greedy accuracy (overall and per bucket) and its k-vote."""

    alias: str
    params: int
    greedy: float
    by_bucket: dict[int, float]
    vote: float
    vote_auroc: float
    greedy_seconds: float


@dataclass
class Ladder:
    n: int
    seed: int
    models: list[ModelLadder]
    cascade: dict = field(default_factory=dict)

    def failures(self) -> list[str]:
        """Which of the issue's ladder targets these numbers miss (empty: all met)."""
        small, large = self.models[0], self.models[-1]
        lo, hi = SMALLEST_GREEDY
        missed = []
        if not lo <= small.greedy <= hi:
            missed.append(f"smallest greedy {small.greedy:.1%} not in [{lo:.0%}, {hi:.0%}]")
        easiest = small.by_bucket[min(small.by_bucket)]
        if easiest < SMALLEST_EASIEST_BUCKET:
            missed.append(f"smallest on the easiest bucket {easiest:.1%} < {SMALLEST_EASIEST_BUCKET:.0%}")
        if large.greedy < LARGEST_GREEDY:
            missed.append(f"largest greedy {large.greedy:.1%} < {LARGEST_GREEDY:.0%}")
        if not small.vote_auroc >= SMALLEST_VOTE_AUROC:
            missed.append(f"smallest vote AUROC {small.vote_auroc:.2f} < {SMALLEST_VOTE_AUROC}")
        if large.params < 30 * small.params:
            missed.append(f"largest has {large.params / small.params:.1f}x the smallest's parameters (< 30x)")
        return missed

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "n": self.n,
                    "seed": self.seed,
                    "cascade": self.cascade,
                    "models": [m.__dict__ for m in self.models],
                    "missed_targets": self.failures(),
                },
                indent=2,
            )
            + "\n"
        )


def ladder_from_results(frame: pd.DataFrame, registry, demo: DemoPlan, n: int, seed: int) -> Ladder:
    """Read the ladder off a demo-plan result frame (one row a problem × strategy)."""
    cascade_key = demo.cascade
    cascade_rows = frame[frame["strategy"] == cascade_key]
    models = []
    for entry in sorted(registry.models, key=lambda e: e.params):
        alias = entry.aliases[0]
        greedy = frame[frame["strategy"] == demo.greedy[alias]]
        voted = frame[frame["strategy"] == demo.vote[alias]]
        correct = greedy["cascade_correct"].astype(bool)
        models.append(
            ModelLadder(
                alias=alias,
                params=entry.params,
                greedy=float(correct.mean()),
                by_bucket={int(b): float(v) for b, v in correct.groupby(greedy["bucket"]).mean().items()},
                vote=float(voted["cascade_correct"].astype(bool).mean()),
                vote_auroc=auroc(first_agreement(voted["cascade_tiers"]), voted["cascade_correct"]),
                greedy_seconds=float(greedy["cascade_seconds"].sum()),
            )
        )
    # the reference a cascade must match: the largest model answering alone, greedily
    largest_cost = float(frame[frame["strategy"] == demo.reference]["cascade_cost"].sum())
    cascade = {
        "strategy": cascade_key,
        "accuracy": float(cascade_rows["cascade_correct"].astype(bool).mean()),
        "escalated": float((cascade_rows["cascade_tiers_used"] > 1).mean()),
        "cost_vs_largest": float(cascade_rows["cascade_cost"].sum()) / largest_cost if largest_cost else None,
    }
    return Ladder(n=n, seed=seed, models=models, cascade=cascade)


def measure(
    n: int,
    seed: int,
    out: Path,
    backend: str = "vllm",
    spec: Path | None = None,
    bank=None,
    overwrite: bool = False,
) -> Ladder:
    """Run the demo plan on ``n`` held-out problems of ``seed`` and read the ladder off it.

    ``out`` must be new or empty; an earlier run there is replaced only with ``overwrite``.
    """
    from cascadec.api import run
    from cascadec.registry import load_registry, named_registry
    from cascadec.runtime.overwrite import refuse_existing, replace_run

    demo = build_demo(spec or demo_spec_path(), n, seed)
    if overwrite:
        replace_run(out)
    else:
        refuse_existing(out)
    frame = run(demo.plan, demo.table, backend=backend, out=out, bank=bank, strategy_column="strategy")
    return ladder_from_results(frame, load_registry(named_registry("zoo")), demo, n, seed)
