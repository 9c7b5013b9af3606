"""The search space: a cascade spec plus a ``search:`` section saying what may vary.

```yaml
version: 1
name: zoo_search
models: zoo
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 0.084M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 1.1M}
search:
  tiers:                      # one entry per cascade tier, in order ({} keeps a tier as written)
    - {k: [2, 3, 4], escalate_if: "agreement < {a} or mean_logprob < {lp}", grid: {a: [0.75, 1.0], lp: [-0.05, -0.02]}}
    - {k: [2, 4], escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}, optional: true}
    - {}
  early_stop: [null, 1]       # round sizes to try (null: no early stopping)
  final_answer: [last_tier]
  adaptive_k:                 # per-difficulty first-tier k and start tier (needs a difficulty column)
    - null
    - {policy: difficulty_buckets, buckets: [[0.5, 2], [1.0, 8]], escalation_k_threshold: 8}
```

Every combination is a candidate (at most ``max_candidates``). Templates are filled with
every grid point and each result is parsed and type-checked as a condition; a candidate is a
spec the compiler accepts (the chosen one is compiled and checked before it is written).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cascadec.core.conditions import parse_condition
from cascadec.errors import SpecError
from cascadec.limits import MAX_K
from cascadec.plan import AdaptiveK, EarlyStop, Plan, PlanStrategy

Number = float | int


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


K = Annotated[int, Field(ge=1, le=MAX_K)]  # the plan's bounds, checked when the space loads
RoundSize = Annotated[int, Field(ge=1, le=MAX_K)]
Temperature = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class TierSearch(_Model):
    k: list[K] | None = Field(None, description="k values to try")
    temperature: list[Temperature] | None = Field(
        None, description="temperatures to try (the bank must have them)"
    )
    escalate_if: str | None = Field(None, description="condition template with {name} placeholders")
    grid: dict[str, list[Number]] = Field(default_factory=dict, description="values of each placeholder")
    optional: bool = Field(False, description="the tier may be left out")


class SearchSpace(_Model):
    tiers: list[TierSearch]
    early_stop: list[RoundSize | None] = [None]
    final_answer: list[Literal["last_tier", "most_confident", "pooled"]] | None = None
    adaptive_k: list[dict[str, Any] | None] = [None]

    @field_validator("adaptive_k")
    @classmethod
    def _adaptive_k_is_a_plan_policy(cls, value: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
        for item in value:
            if item is not None:
                AdaptiveK(**item)  # a ValidationError here is reported at search.adaptive_k
        return value

    max_candidates: int = Field(20000, ge=1, le=1_000_000)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One point of the space: its plan strategy (to simulate) and its spec data (to write)."""

    strategy: PlanStrategy
    spec: dict


def load_space(path: str | Path) -> tuple[dict, SearchSpace]:
    """(spec data without ``search``, the search space) of a space file; errors are located."""
    from cascadec.spec.loader import parse_yaml, read_spec_text

    text = read_spec_text(path)
    doc = parse_yaml(text, str(path))
    data = doc.data
    if not isinstance(data, dict) or "search" not in data:
        raise SpecError("a search space is a cascade spec with a 'search:' section", code="E200", where=path)
    base = {k: v for k, v in data.items() if k != "search"}
    try:
        space = SearchSpace.model_validate(data["search"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("search", *first["loc"]))
        line, col = doc.locate(tuple(("search", *first["loc"])))
        raise SpecError(f"{where}: {first['msg']}", code="E200", where=f"{path}:{line}:{col}") from None
    cascade = base.get("strategy", {}).get("cascade") if isinstance(base.get("strategy"), dict) else None
    if not isinstance(cascade, list):
        raise SpecError("a search space needs a 'strategy: cascade:' base", code="E200", where=path)
    if len(space.tiers) != len(cascade):
        raise SpecError(
            f"search.tiers has {len(space.tiers)} entries, the cascade {len(cascade)} tiers",
            code="E200",
            where=path,
        )
    return base, space


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


def _fill(template: str | None, grid: dict[str, list[Number]], where: str) -> list[str | None]:
    if template is None:
        return [None]
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    missing = [n for n in names if n not in grid]
    if missing:
        raise SpecError(f"{where}: placeholder(s) {', '.join(missing)} have no grid values", code="E200")
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        text = template.format(**dict(zip(names, values, strict=True)))
        out.append(str(parse_condition(text)))  # type-checked and canonical
    return out


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
