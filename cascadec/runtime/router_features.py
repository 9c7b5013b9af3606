"""Router predictions as problem features: what every place that runs a routed plan calls first.

A routed strategy's start tier and its ``router_p`` signal read the router's P(right) per tier
from the problem's features (``cascadec.plan.route_key``), exactly as adaptive k reads a
difficulty column. :func:`attach_routes` predicts them — once per router, for every problem
that lacks them — so ``run`` (every backend), the simulator (arrays and exact path), ``serve``
and the pandas API route the same problem the same way. Problems that already carry them keep
theirs: ``calibrate`` hands in cross-fitted predictions (from models that never saw the
problem) for the problems it chooses on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from cascadec.plan import PlanRoute, PlanStrategy, route_key
from cascadec.router.model import cached_router
from cascadec.runtime.data import Problem


def routes_of(strategies: Iterable[PlanStrategy]) -> dict[tuple[str, str], tuple[PlanRoute, list[str]]]:
    """(router path, hash) → (a route naming it, every head the strategies read from it)."""
    out: dict[tuple[str, str], tuple[PlanRoute, list[str]]] = {}
    for s in strategies:
        r = s.route
        if r is None:
            continue
        _, heads = out.setdefault((r.router, r.hash), (r, []))
        heads.extend(h for h in r.heads if h not in heads)
    return out


def attach_routes(strategies: Iterable[PlanStrategy], problems: Sequence[Problem]) -> list[Problem]:
    """``problems`` with the router predictions the strategies read (see the module docstring)."""
    out = list(problems)
    for (path, digest), (route, heads) in routes_of(strategies).items():
        keys = [route_key(route, h) for h in heads]
        missing = [i for i, p in enumerate(out) if any(k not in p.features for k in keys)]
        if not missing:
            continue
        router = cached_router(path, digest)
        numeric = {c: [out[i].features.get(c) for i in missing] for c in router.vectoriser.numeric}
        probs = router.predict([out[i].problem for i in missing], numeric, heads)
        for row, i in enumerate(missing):
            new = {k: float(probs[row, j]) for j, k in enumerate(keys)}
            out[i] = replace(out[i], features={**out[i].features, **new})
    return out
