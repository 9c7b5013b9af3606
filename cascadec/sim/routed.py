"""Learned routes in a search: the router is trained on the calibration split only.

A space's ``search: route:`` entries (``{policy: threshold, tau: [...]}``, ``{policy:
expected_cost, cost_weight: [...]}``) multiply its candidates: every candidate also runs under
every route. :func:`route_search` trains one router on the **calibration split only** — the
split ``calibrate`` and ``optimize`` will draw, a hash of (seed, id) — and hands every problem its
router predictions as features:

- calibration problems: the *cross-fitted* predictions (each from the fold model that did not
  see the problem), so choosing among candidates never rests on a prediction of a model that
  saw the problem it predicts;
- held-out problems: the router fitted on the whole calibration split, which saw none of them.

Nothing about the held-out problems reaches training or choosing (a test scrambles their labels
and finds the same router, byte for byte, and the same choice). The router is written beside the
chosen spec, which names it by a relative path and its hash.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cascadec.errors import CascadecError
from cascadec.plan import PlanRoute, route_key
from cascadec.router.model import Router, save_router
from cascadec.runtime.data import Problem
from cascadec.sim.calibrate import split
from cascadec.sim.router_fit import fit_router
from cascadec.sim.space import Candidate, Expansion


@dataclasses.dataclass(frozen=True)
class RouteOption:
    policy: str
    tau: float | None = None
    cost_weight: float | None = None

    def spec(self, router: str, digest: str) -> dict:
        out = {"router": router, "hash": digest, "policy": self.policy}
        if self.tau is not None:
            out["tau"] = self.tau
        if self.cost_weight is not None:
            out["cost_weight"] = self.cost_weight
        return out


def route_options(space) -> list[RouteOption | None]:
    """Every route the space asks to try (None: no route), in a fixed order."""
    out: list[RouteOption | None] = []
    for entry in space.route:
        if entry is None:
            out.append(None)
        elif entry.policy == "threshold":
            out += [RouteOption("threshold", tau=t) for t in entry.tau or ()]
        elif entry.policy == "expected_cost":
            out += [RouteOption("expected_cost", cost_weight=w) for w in entry.cost_weight or ()]
        else:
            out.append(RouteOption("none"))
    return list(dict.fromkeys(out))


def route_columns(space) -> list[str]:
    return list(dict.fromkeys(c for e in space.route if e is not None for c in e.columns))


def routes_asked(space) -> bool:
    return any(e is not None for e in getattr(space, "route", [None]))


@dataclasses.dataclass
class Routed:
    router: Router
    path: Path
    candidates: Expansion
    problems: list[Problem]
    seconds: float


def route_search(
    search,
    *,
    fraction: float,
    seed: int,
    router_out: Path,
    folds: int = 5,
    problems: list[Problem] | None = None,
    spec_dir: Path | None = None,
) -> Routed:
    """Train the router on the calibration split, predict every problem (see the module docstring),
    write it to ``router_out`` and add every (candidate, route) pair to the candidates. Their spec
    data names the router relative to ``spec_dir`` (where specs are written; default its folder)."""
    import os

    problems = list(problems if problems is not None else search.problems)
    options = route_options(search.space)
    routed_options = [o for o in options if o is not None]
    if not routed_options:
        raise CascadecError("the space's route: entries name no route", code="E200")
    total = len(search.candidates) * len(options)
    if total > search.space.max_candidates:
        raise CascadecError(
            f"with its routes the search space has {total} candidates, more than max_candidates "
            f"{search.space.max_candidates}",
            code="E200",
        )
    columns = route_columns(search.space)
    missing = [c for c in columns if any(c not in p.features for p in problems)]
    if missing:
        raise CascadecError(f"route columns {', '.join(missing)} are not in the data", code="E500")
    calib, hold = split(problems, fraction, seed)
    calib_problems = [problems[i] for i in calib]
    trained = fit_router(
        search.plan,
        search.bank,
        calib_problems,  # the held-out split is never handed to training
        equivalence=search.equivalence,
        columns=columns,
        folds=folds,
        seed=seed,
        training={"split": {"seed": seed, "calibration_fraction": fraction, "side": "calibration"}},
    )
    router = save_router(trained.router, router_out)
    path = Path(router_out).resolve()
    probe = PlanRoute(router=str(path), hash=router.hash, heads=(router.names[0],))
    keys = [route_key(probe, h) for h in router.names]
    held = [problems[i] for i in hold]
    numeric = {c: [p.features.get(c) for p in held] for c in router.vectoriser.numeric}
    held_p = router.predict([p.problem for p in held], numeric) if held else np.zeros((0, len(keys)))
    out = list(problems)
    for values, rows in ((trained.oof, calib), (held_p, hold)):
        for row, i in enumerate(rows):
            feats = {k: float(values[row, j]) for j, k in enumerate(keys)}
            out[i] = dataclasses.replace(out[i], features={**out[i].features, **feats})
    text = os.path.relpath(path, Path(spec_dir or path.parent).resolve())
    candidates = list(search.candidates) if None in options else []
    rejected = list(search.candidates.rejected) if None in options else []
    routed, refused = routed_candidates(search, routed_options, router, path, text)
    candidates += routed
    rejected += refused
    if not candidates:
        first = rejected[0].describe() if rejected else "none"
        raise CascadecError(f"the compiler rejects every routed candidate: {first}", code="E400")
    expansion = Expansion(candidates, rejected)
    return Routed(router, path, expansion, out, trained.seconds)


def routed_candidates(search, options: list[RouteOption], router: Router, path: Path, text: str):
    """(accepted, rejected): every candidate of the space under every route, each spec (with its
    ``route:``) compiled through the compiler's front door — the router's hash and heads checked,
    ``router_p`` conditions meaningful — and written naming the router by ``text``."""
    from cascadec.compiler import compile_spec_data
    from cascadec.errors import CompileError, Diagnostic, SpecError
    from cascadec.sim.space import Rejected
    from cascadec.spec.space import spec_candidates, tier_options

    space = search.space
    tiers = tier_options(search.base, space)
    raw = list(spec_candidates(search.base, space, tiers))
    stride = max((c.index for c in raw), default=-1) + 1
    accepted, rejected = [], []
    for j, option in enumerate(options):
        for cand in raw:
            index = stride * (j + 1) + cand.index
            key = f"candidate-{index}"
            body = cand.spec["strategy"]
            compiled_spec = {**cand.spec, "strategy": {**body, "route": option.spec(str(path), router.hash)}}
            written = {**cand.spec, "strategy": {**body, "route": option.spec(text, router.hash)}}
            try:
                plan, _ = compile_spec_data(
                    {**compiled_spec, "name": key}, search.registry, base_dir=path.parent, source=key
                )
            except (SpecError, CompileError) as exc:
                errors = [d for d in exc.diagnostics if d.is_error] or [Diagnostic(exc.code, exc.message)]
                rejected.append(Rejected(index, f"{cand.describe(space, tiers)}; route {option}", errors[0]))
                continue
            accepted.append(Candidate(plan.strategies[0], written, index))
    return accepted, rejected


def problems_with_columns(search, data: Path, limit: int | None, columns: list[str]) -> list[Problem]:
    """The search's problems, re-read with the numeric ``columns`` a route may read (same order)."""
    if not columns:
        return list(search.problems)
    from cascadec.plan import data_columns
    from cascadec.runtime.data import problems_from_frame, read_table

    frame = read_table(data)
    if limit is not None:
        frame = frame.head(limit)
    wanted = data_columns(search.strategies) | set(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CascadecError(
            f"route columns {', '.join(missing)} are not in the data", code="E500", where=data
        )
    keep = {p.id for p in search.problems}  # the ones the bank covers
    return [p for p in problems_from_frame(frame, feature_columns=wanted, source=str(data)) if p.id in keep]


def with_search(search, routed: Routed):
    """The search with the routed candidates and the problems carrying their predictions."""
    return dataclasses.replace(search, candidates=routed.candidates, problems=routed.problems)
