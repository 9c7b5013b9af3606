"""The search space's candidates for the simulator: a cascade spec plus a ``search:`` section.

The space's model, its loading (located errors) and its syntax live in ``cascadec.spec.space``
(the light layer ``cascadec lint`` and ``compile --check`` read); this module compiles the base
and expands every candidate to a plan strategy to simulate and spec data to write.

Every combination is a candidate (at most ``max_candidates``). Templates are filled with
every grid point and each result is parsed and type-checked as a condition; a candidate is a
spec the compiler accepts (the chosen one is compiled and checked before it is written).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from pathlib import Path

from cascadec.errors import SpecError
from cascadec.plan import AdaptiveK, EarlyStop, Plan, PlanStrategy
from cascadec.spec.space import Number, SearchSpace, TierSearch, load_space
from cascadec.spec.space import fill as _fill

__all__ = [
    "Candidate",
    "Number",
    "SearchSpace",
    "TierSearch",
    "compile_base",
    "expand",
    "load_space",
    "rebase_paths",
]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One point of the space: its plan strategy (to simulate) and its spec data (to write)."""

    strategy: PlanStrategy
    spec: dict


def compile_base(base: dict, source: Path) -> Plan:
    """Compile the base spec (as written next to the space file, so relative paths resolve)."""
    import tempfile

    import yaml

    from cascadec.compiler import compile_spec

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=source.parent, delete=False) as fh:
        yaml.safe_dump(base, fh, sort_keys=False)
        tmp = Path(fh.name)
    try:
        plan, _ = compile_spec(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return plan


def expand(base: dict, space: SearchSpace, plan: Plan) -> list[Candidate]:
    """Every candidate of the space, in a fixed order."""
    strategy = plan.strategies[0]
    spec_tiers = base["strategy"]["cascade"]
    per_tier = []
    for i, (ts, tier) in enumerate(zip(space.tiers, strategy.tiers, strict=True)):
        ks = ts.k or [tier.k]
        temps = ts.temperature or [tier.temperature]
        conds = _fill(ts.escalate_if, ts.grid, f"search.tiers[{i}]") if ts.escalate_if else [tier.escalate_if]
        options: list[tuple | None] = [(k, t, c) for k in ks for t in temps for c in conds]
        if ts.optional:
            options.append(None)
        per_tier.append(options)
    finals = space.final_answer or [strategy.final_answer]
    total = 1
    for opts in per_tier:
        total *= len(opts)
    total *= len(space.early_stop) * len(finals) * len(space.adaptive_k)
    if total > space.max_candidates:
        raise SpecError(
            f"the search space has {total} candidates, more than max_candidates {space.max_candidates}",
            code="E200",
        )
    out = []
    for choice in itertools.product(*per_tier):
        kept = [(i, c) for i, c in enumerate(choice) if c is not None]
        if not kept:
            continue
        tiers, spec_list = [], []
        for pos, (i, (k, temp, cond)) in enumerate(kept):
            last = pos == len(kept) - 1
            tiers.append(
                strategy.tiers[i].model_copy(
                    update={"k": k, "temperature": temp, "escalate_if": None if last else cond}
                )
            )
            st = dict(spec_tiers[i])
            st.update({"k": k, "temperature": temp})
            st.pop("escalate_if", None)
            if not last and cond is not None:
                st["escalate_if"] = cond
            spec_list.append(st)
        for es, fa, ak in itertools.product(space.early_stop, finals, space.adaptive_k):
            update = {
                "key": f"candidate-{len(out)}",
                "tiers": tuple(tiers),
                "final_answer": fa,
                "early_stop": EarlyStop(round_size=es) if es else None,
                "adaptive_k": AdaptiveK(**ak) if ak else None,
                "kind": strategy.kind,
            }
            spec = copy.deepcopy(base)
            body = spec["strategy"]
            body["cascade"] = spec_list
            body["final_answer"] = fa
            body.pop("early_stop", None)
            body.pop("adaptive_k", None)
            if es:
                body["early_stop"] = {"round_size": es}
            if ak:
                body["adaptive_k"] = dict(ak)
            out.append(Candidate(strategy.model_copy(update=update), spec))
    return out


def rebase_paths(spec: dict, source: Path, out_dir: Path) -> dict:
    """The spec with a ``models:`` file path that was relative to the space file made relative
    to where the spec is written, so a written spec compiles wherever it lands."""
    import os

    models = spec.get("models")
    if not isinstance(models, str) or Path(models).is_absolute():
        return spec
    path = source.parent / models
    if not path.is_file():
        return spec  # a shipped registry name (zoo), resolved the same anywhere
    return {**spec, "models": os.path.relpath(path.resolve(), out_dir.resolve())}
