"""The demo plan: the demo cascade next to every zoo model alone, on held-out problems.

Shared by ``cascadec demo`` (which prints the comparison) and ``cascadec zoo eval`` (which
reads the zoo's ladder off the same run), so neither command imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cascadec.plan import Plan, seal

DEMO_SEED = 20261125  # held-out: the zoo's training streams never use "test:" seeds
DEMO_SOURCE = "demo:"  # the demo plan's source: manifests of demo runs record it
VOTE_BASELINE = (4, 0.7)  # (k, T) of the vote baselines when the cascade's first tier is greedy


def demo_spec_path() -> Path:
    from cascadec.resources import data_dir

    return data_dir("specs") / "demo.yaml"


def merge_plans(*plans: Plan, source: str = "") -> Plan:
    """One plan holding every strategy (first wins on a repeated key) and every model."""
    models: dict = {}
    strategies: dict = {}
    for plan in plans:
        models.update(plan.models)
        for s in plan.strategies:
            strategies.setdefault(s.key, s)
    return seal(Plan(models=models, strategies=tuple(strategies.values()), source=source))


@dataclass(frozen=True)
class DemoPlan:
    """The plan, its problem table (one row a problem × strategy) and the strategies' roles."""

    plan: Plan
    table: pd.DataFrame
    cascade: str
    greedy: dict[str, str]  # zoo alias -> key of the model answering alone, greedily
    vote: dict[str, str]  # zoo alias -> key of its majority vote (see ``vote_baseline``)
    reference: str  # the largest model greedy: what the cascade must match

    @property
    def baselines(self) -> list[str]:
        return [key for alias in self.greedy for key in (self.greedy[alias], self.vote[alias])]


def vote_baseline(k: int, temperature: float) -> tuple[int, float]:
    """The vote every model is compared at: the cascade's first tier when it samples a vote,
    else ``VOTE_BASELINE`` (a greedy first tier would make the vote baseline its greedy twin)."""
    return (k, temperature) if k > 1 and temperature > 0 else VOTE_BASELINE


def build_demo(spec: Path, n: int, seed: int) -> DemoPlan:
    """The demo cascade of ``spec`` plus every zoo model greedy and voting, over ``n`` problems."""
    from cascadec.compiler import compile_markers, compile_spec
    from cascadec.core.printer import vote_marker
    from cascadec.registry import load_registry, named_registry
    from cascadec.zoo.task import sample_problems

    cascade_plan, _ = compile_spec(spec)
    cascade = cascade_plan.strategies[0]
    registry = load_registry(named_registry("zoo"))
    first = cascade.tiers[0]
    aliases = [entry.aliases[0] for entry in sorted(registry.models, key=lambda e: e.params)]
    vote_k, vote_t = vote_baseline(first.k, first.temperature)
    markers = {a: (a, vote_marker(a, vote_k, vote_t)) for a in aliases}
    baseline_plan, _ = compile_markers([m for pair in markers.values() for m in pair], registry=registry)
    greedy = {a: baseline_plan.strategy(markers[a][0]).key for a in aliases}
    vote = {a: baseline_plan.strategy(markers[a][1]).key for a in aliases}
    plan = merge_plans(cascade_plan, baseline_plan, source=f"{DEMO_SOURCE}{spec.name}")
    problems = pd.DataFrame(sample_problems(n, seed))
    keys = [cascade.key] + [s.key for s in baseline_plan.strategies]
    table = pd.concat([problems.assign(strategy=k) for k in keys], ignore_index=True)
    return DemoPlan(plan, table, cascade.key, greedy, vote, reference=greedy[aliases[-1]])
