"""The dry-run routing breakdown: what a run would ask of each model, before loading any.

The original executor's ``--dry-run`` printed how problems were routed; here it also prices
the worst case, where every problem escalates through every tier it may reach and every
retry and exploration fires: samples, tokens (samples × max_tokens) and cost (tokens ×
cost_per_token), capped by the strategy's per-problem sample budget. Real runs cost less —
that is the point of a cascade — but the worst case is what a budget must cover.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from cascadec.core.selection import worst_case_samples
from cascadec.runtime.session import Prepared


@dataclass
class _Acc:
    problems: int = 0
    samples: int = 0
    tokens: int = 0
    cost: float = 0.0


def breakdown(prepared: Prepared) -> dict[str, pd.DataFrame]:
    """Frames ``strategies``, ``tiers`` and ``models`` of the worst-case routing.

    ``tiers``: per (strategy, tier index, model), how many problems *start* there (adaptive k
    may skip the first tier), how many may *reach* it, and their worst-case samples, tokens,
    cost; ``models``: the same summed per model, in load (cost) order.
    """
    per_strategy: dict[str, int] = defaultdict(int)
    per_tier: dict[tuple[str, int, str], _Acc] = defaultdict(_Acc)
    per_model: dict[str, _Acc] = defaultdict(_Acc)
    starts: dict[tuple[str, int], int] = defaultdict(int)
    for _problem, strategy, tiers in prepared.assignments:
        per_strategy[strategy.key] += 1
        offset = len(strategy.tiers) - len(tiers)
        starts[(strategy.key, offset)] += 1
        budget = strategy.budget.max_samples_per_problem if strategy.budget else None
        used = 0
        models_seen: set[str] = set()
        for pos, t in enumerate(tiers):
            n = worst_case_samples(t)
            if budget is not None:
                n = max(0, min(n, budget - used))
            if n == 0:
                break
            used += n
            acc = per_tier[(strategy.key, pos + offset, t.model)]
            acc.problems += 1
            acc.samples += n
            acc.tokens += n * t.max_tokens
            acc.cost += n * t.max_tokens * t.cost_per_token
            m = per_model[t.model]
            m.samples += n
            m.tokens += n * t.max_tokens
            m.cost += n * t.max_tokens * t.cost_per_token
            if t.model not in models_seen:
                m.problems += 1
                models_seen.add(t.model)
    strategies = pd.DataFrame(
        [{"strategy": k, "problems": v} for k, v in per_strategy.items()], columns=["strategy", "problems"]
    )
    tiers = pd.DataFrame(
        [
            {
                "strategy": key,
                "tier": idx,
                "model": model,
                "starts": starts.get((key, idx), 0),
                "reaches": a.problems,
                "samples": a.samples,
                "tokens": a.tokens,
                "cost": a.cost,
            }
            for (key, idx, model), a in sorted(per_tier.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        ]
    )
    order = sorted(per_model, key=lambda m: (prepared.plan.models[m].params, m))
    models = pd.DataFrame(
        [
            {
                "model": m,
                "params": prepared.plan.models[m].params,
                "problems": per_model[m].problems,
                "samples": per_model[m].samples,
                "tokens": per_model[m].tokens,
                "cost": per_model[m].cost,
            }
            for m in order
        ]
    )
    return {"strategies": strategies, "tiers": tiers, "models": models}
