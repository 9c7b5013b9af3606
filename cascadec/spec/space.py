"""The search space's model: a cascade spec plus a ``search:`` section saying what may vary.

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
every grid point and each result is parsed and type-checked as a condition.

This module is the pure model (pydantic, no plan, no simulator), so ``cascadec lint`` and
``compile --check`` read spaces in their own light layer: ``cascadec.compiler.space`` checks
every candidate through the compiler, ``cascadec.sim.space`` expands them for the simulator.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cascadec.core.conditions import parse_condition
from cascadec.core.policies import FinalAnswer
from cascadec.errors import SpecError
from cascadec.limits import MAX_CANDIDATES, MAX_K, MAX_PLACEHOLDERS, MAX_TIERS
from cascadec.spec.model import AdaptiveKSpec, Spec
from cascadec.spec.vote import VoteSpec

Number = Annotated[float, Field(allow_inf_nan=False)] | int

# the spec's bounds (TierSpec), checked when the space loads: a value no candidate could take
K = Annotated[int, Field(ge=1, le=MAX_K)]
RoundSize = Annotated[int, Field(ge=1, le=MAX_K)]
Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierSearch(_Model):
    """What may vary in one cascade tier (``{}`` keeps the tier as written)."""

    k: list[K] | None = Field(None, min_length=1, description="k values to try")
    temperature: list[Temperature] | None = Field(
        None, min_length=1, description="temperatures to try (the bank must have them)"
    )
    escalate_if: str | None = Field(None, description="condition template with {name} placeholders")
    grid: dict[str, list[Number]] = Field(default_factory=dict, description="values of each placeholder")
    optional: bool = Field(False, description="the tier may be left out")

    @field_validator("escalate_if")
    @classmethod
    def _a_template(cls, value: str | None) -> str | None:
        if value is not None:
            template_names(value)  # a ValueError is reported at search.tiers[i].escalate_if
        return value

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, value: dict[str, list[Number]]) -> dict[str, list[Number]]:
        for name, values in value.items():
            if not name.isidentifier() or not name.isascii():
                raise ValueError(f"grid name {name!r} is not a placeholder name (letters, digits, _)")
            if not values:
                raise ValueError(f"grid {name!r} has no values: give at least one")
        return value

    @model_validator(mode="after")
    def _every_placeholder_has_values(self) -> TierSearch:
        if self.escalate_if is not None:
            missing = [n for n in template_names(self.escalate_if) if n not in self.grid]
            if missing:
                raise ValueError(
                    f"escalate_if: placeholder(s) {', '.join(missing)} have no grid values "
                    f"(grid: {{{missing[0]}: [...]}})"
                )
        return self


Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
CostWeight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]


class RouteSearch(_Model):
    """Learned routes to try: ``calibrate`` / ``optimize`` train the router on the calibration split
    (cross-fitted there) and write it beside the chosen spec (``cascadec.sim.routed``)."""

    policy: Literal["threshold", "expected_cost", "none"] = Field(
        "threshold", description="as a spec's route"
    )
    tau: list[Probability] | None = Field(None, min_length=1, description="threshold: values of tau to try")
    cost_weight: list[CostWeight] | None = Field(
        None, min_length=1, description="expected_cost: values of cost_weight to try"
    )
    columns: list[str] = Field(default_factory=list, description="numeric data columns the router may read")

    @model_validator(mode="after")
    def _values(self) -> RouteSearch:
        if self.policy == "threshold" and not self.tau:
            raise ValueError("a threshold route needs tau: [values to try]")
        if self.policy == "expected_cost" and not self.cost_weight:
            raise ValueError("an expected_cost route needs cost_weight: [values to try]")
        return self


class SearchSpace(_Model):
    """The ``search:`` section of a search-space file."""

    tiers: list[TierSearch] = Field(description="one entry per cascade tier, in order")
    early_stop: list[RoundSize | None] = Field(
        [None], min_length=1, description="round sizes to try (null: no early stopping)"
    )
    final_answer: list[FinalAnswer] | None = Field(
        None, min_length=1, description="final-answer rules to try"
    )
    adaptive_k: list[dict[str, Any] | None] = Field(
        [None], min_length=1, description="adaptive-k policies to try (null: none), as in a spec"
    )
    vote: list[dict[str, Any] | None] | None = Field(
        None,
        min_length=1,
        description="vote policies to try (null: majority), as in a spec's vote: — e.g. "
        "{policy: best, metric: score} (best-of-n by a reward model); absent: the base's vote",
    )
    route: list[RouteSearch | None] = Field(
        [None],
        min_length=1,
        description="learned routes to try (null: none); the router is trained on the calibration split",
    )
    max_candidates: int = Field(
        20000,
        ge=1,
        le=MAX_CANDIDATES,
        description="refuse a larger space (counted before any template is filled)",
    )

    @field_validator("vote")
    @classmethod
    def _vote_is_a_spec_vote(
        cls, value: list[dict[str, Any] | None] | None
    ) -> list[dict[str, Any] | None] | None:
        for item in value or []:
            if item is not None:
                VoteSpec.model_validate(item)  # a ValidationError is reported at search.vote
        return value

    @field_validator("adaptive_k")
    @classmethod
    def _adaptive_k_is_a_spec_policy(cls, value: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
        for item in value:
            if item is None:
                continue
            policy = AdaptiveKSpec.model_validate(item)  # a ValidationError is reported at search.adaptive_k
            if any(not 1 <= k <= MAX_K for _, k in policy.buckets):
                raise ValueError(f"every bucket k must be in [1, {MAX_K}]")
            if any(not 0 <= t < MAX_TIERS for _, t in policy.start_tiers):
                raise ValueError(f"every start tier must be in [0, {MAX_TIERS - 1}]")
        return value


class SearchSection(SearchSpace):
    """The schema's view: adaptive-k policies typed as the spec's (the model keeps plain dicts)."""

    adaptive_k: list[AdaptiveKSpec | None] = Field(  # type: ignore[assignment]
        [None], min_length=1, description="adaptive-k policies to try (null: none), as in a spec"
    )


class SpaceFile(Spec):
    """A search-space file: a cascade spec (the base) plus ``search:`` (``cascadec schema space``)."""

    search: SearchSection


def space_json_schema() -> dict:
    return SpaceFile.model_json_schema()


def is_space_data(data: Any) -> bool:
    return isinstance(data, dict) and "search" in data


def load_space_document(path: str | Path):
    """(document, spec data without ``search``, the search space) of a space file; errors are located."""
    from cascadec.spec.loader import data_path, parse_yaml, read_spec_text

    text = read_spec_text(path)
    doc = parse_yaml(text, str(path))
    data = doc.data

    def fail(message: str, at: tuple = (), *, key: bool = True) -> SpecError:
        d = doc.diag("E200", message, at, key=key)
        return SpecError(message, code="E200", where=f"{path}:{d.line}:{d.column}", diagnostics=[d])

    if not is_space_data(data):
        raise fail("a search space is a cascade spec with a 'search:' section")
    base = {k: v for k, v in data.items() if k != "search"}
    try:
        space = SearchSpace.model_validate(data["search"])
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = data_path(data["search"], first["loc"])  # without pydantic's union and validator names
        msg = first["msg"].removeprefix("Value error, ")
        if msg.startswith("escalate_if: ") and loc and loc[-1] != "escalate_if":
            loc, msg = (*loc, "escalate_if"), msg.removeprefix("escalate_if: ")
        where = ".".join(str(p) for p in ("search", *loc))
        raise fail(f"{where}: {msg}", ("search", *loc), key=False) from None
    cascade = base.get("strategy", {}).get("cascade") if isinstance(base.get("strategy"), dict) else None
    if not isinstance(cascade, list):
        raise fail("a search space needs a 'strategy: cascade:' base", ("strategy",))
    if len(space.tiers) != len(cascade):
        raise fail(
            f"search.tiers has {len(space.tiers)} entries, the cascade {len(cascade)} tiers",
            ("search", "tiers"),
        )
    try:
        check_space_size(space)
    except SpecError as exc:
        raise fail(exc.message, ("search",)) from None
    return doc, base, space


def load_space(path: str | Path) -> tuple[dict, SearchSpace]:
    """(spec data without ``search``, the search space) of a space file; errors are located."""
    _, base, space = load_space_document(path)
    return base, space


def template_names(template: str) -> list[str]:
    """The distinct ``{name}`` placeholders of a condition template, in order.

    ValueError (a located E200 where a space loads) for anything but plain names: an unmatched
    ``{`` or ``}``, an empty ``{}`` or a positional ``{0}``, attribute or index access
    (``{a.b}``, ``{a[0]}``), a conversion (``{a!r}``) or a format spec (``{a:>9}``: a
    placeholder is filled with the number as written), more than MAX_PLACEHOLDERS names."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered", "expected '}' before end of string"
        raise ValueError(f"not a condition template: {exc} (write a placeholder as {{name}})") from None
    names: list[str] = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name or not name.isidentifier() or not name.isascii():
            shown = "{" + name + "}"
            raise ValueError(
                f"placeholder {shown!r} is not a name: write {{name}} with letters, digits and _ "
                "(no positional {} or {0}, no attributes or indexes)"
            )
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} has a conversion or format spec; write {{{name}}}")
        if name not in names:
            names.append(name)
    if len(names) > MAX_PLACEHOLDERS:
        raise ValueError(f"the template has {len(names)} placeholders; at most {MAX_PLACEHOLDERS}")
    return names


def tier_option_count(ts: TierSearch) -> int:
    """How many (k, temperature, condition) options a tier has, counted without filling anything."""
    conds = 1
    if ts.escalate_if:
        for name in template_names(ts.escalate_if):
            conds *= len(ts.grid.get(name, ()))
    return len(ts.k or [None]) * len(ts.temperature or [None]) * conds


def route_option_count(space: SearchSpace) -> int:
    """How many routes the space tries (None, each tau, each cost weight: as ``cascadec.sim.routed``)."""
    seen: set[tuple] = set()
    for entry in space.route:
        if entry is None:
            seen.add((None,))
        elif entry.policy == "threshold":
            seen.update(("threshold", t) for t in entry.tau or ())
        elif entry.policy == "expected_cost":
            seen.update(("expected_cost", w) for w in entry.cost_weight or ())
        else:
            seen.add(("none",))
    return max(len(seen), 1)


def structural_choices(space: SearchSpace) -> int:
    """Early stopping x final answer x vote x adaptive k: the choices beside the tiers'."""
    return (
        len(space.early_stop)
        * len(space.final_answer or [None])
        * len(space.vote or [None])
        * len(space.adaptive_k)
    )


def space_size(space: SearchSpace) -> int:
    """How many candidates the space expands to (routes included), counted before any template is
    filled."""
    per_tier, all_out = 1, 1
    for ts in space.tiers:
        per_tier *= tier_option_count(ts) + ts.optional
        all_out *= int(ts.optional)
    return (per_tier - all_out) * structural_choices(space) * route_option_count(space)


def check_space_size(space: SearchSpace) -> int:
    """The space's size; SpecError (E200) above ``max_candidates`` — before any template is filled,
    so 4 placeholders x 300 values is refused at once, not after parsing 8.1e9 conditions."""
    total = space_size(space)
    if total > space.max_candidates:
        shown = f"{total:,}" if total < 10**15 else f"about 10^{len(str(total)) - 1}"
        raise SpecError(
            f"the search space has {shown} candidates, more than max_candidates {space.max_candidates:,} "
            f"(at most {MAX_CANDIDATES:,}); narrow the grids or the lists",
            code="E200",
        )
    return total


def fill(template: str | None, grid: dict[str, list[Number]], where: str) -> list[str | None]:
    """Every grid point of a condition template, parsed, type-checked and canonical."""
    if template is None:
        return [None]
    try:
        names = template_names(template)
    except ValueError as exc:
        raise SpecError(f"{where}.escalate_if: {exc}", code="E200") from None
    missing = [n for n in names if n not in grid]
    if missing:
        raise SpecError(f"{where}: placeholder(s) {', '.join(missing)} have no grid values", code="E200")
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        text = template.format(**dict(zip(names, values, strict=True)))
        out.append(str(parse_condition(text)))  # type-checked and canonical
    return out


def unused_grid_names(tier: TierSearch) -> list[str]:
    used = set(template_names(tier.escalate_if)) if tier.escalate_if else set()
    return [name for name in tier.grid if name not in used]


@dataclass(frozen=True)
class SpecCandidate:
    """One point of the space at the spec level: its spec data and where each choice came from."""

    index: int  # candidate-{index}, the key calibrate and optimize give it
    spec: dict
    tiers: tuple[int, ...]  # the original tier index of each kept tier
    choices: tuple[tuple[int, int, int] | None, ...]  # per original tier: (k, T, condition) option indices
    early_stop: int
    final_answer: int
    adaptive_k: int
    vote: int = 0

    def describe(self, space: SearchSpace, options: list[list[tuple]]) -> str:
        parts = []
        for i, choice in enumerate(self.choices):
            ts = space.tiers[i]
            if choice is None:
                parts.append(f"tier {i} left out")
                continue
            k, t, cond = options[i][choice[0]]
            bits = ([f"k {k}"] if ts.k else []) + ([f"T {t:g}"] if ts.temperature else [])
            if ts.escalate_if and i != self.tiers[-1]:
                bits.append(f"escalate_if {cond!r}")
            if bits:
                parts.append(f"tier {i}: " + ", ".join(bits))
        if len(space.early_stop) > 1:
            parts.append(f"early_stop {space.early_stop[self.early_stop]}")
        if space.final_answer and len(space.final_answer) > 1:
            parts.append(f"final_answer {space.final_answer[self.final_answer]}")
        if len(space.adaptive_k) > 1:
            parts.append(f"adaptive_k #{self.adaptive_k}")
        if space.vote and len(space.vote) > 1:
            vote = space.vote[self.vote]
            parts.append(
                "vote majority" if vote is None else "vote " + ", ".join(f"{k} {v}" for k, v in vote.items())
            )
        return "; ".join(parts)


def tier_options(base: dict, space: SearchSpace) -> list[list[tuple]]:
    """Per tier, its (k, temperature, condition) options in expansion order (None: as written).

    Conditions are filled templates (parsed and type-checked: a SpecError names the tier), once
    the space's size is known to be within ``max_candidates`` (:func:`check_space_size`)."""
    check_space_size(space)
    spec_tiers = base["strategy"]["cascade"]
    out = []
    for i, (ts, tier) in enumerate(zip(space.tiers, spec_tiers, strict=True)):
        written = tier if isinstance(tier, dict) else {}
        ks = ts.k or [written.get("k")]
        temps = ts.temperature or [written.get("temperature")]
        conds = (
            fill(ts.escalate_if, ts.grid, f"search.tiers[{i}]")
            if ts.escalate_if
            else [written.get("escalate_if")]
        )
        out.append([(k, t, c) for k in ks for t in temps for c in conds])
    return out


def count_candidates(space: SearchSpace, options: list[list[tuple]]) -> int:
    """How many candidates the space expands to (every tier left out is no candidate)."""
    per_tier, all_out = 1, 1
    for ts, opts in zip(space.tiers, options, strict=True):
        per_tier *= len(opts) + ts.optional
        all_out *= int(ts.optional)
    return (per_tier - all_out) * structural_choices(space)


def spec_candidates(base: dict, space: SearchSpace, options: list[list[tuple]]) -> Iterator[SpecCandidate]:
    """Every candidate's spec data, in the order (and with the index) ``cascadec.sim.space.expand`` gives."""
    import copy

    spec_tiers = base["strategy"]["cascade"]
    per_tier: list[list[tuple[int, int, int] | None]] = []
    for ts, opts in zip(space.tiers, options, strict=True):
        choices: list[tuple[int, int, int] | None] = [(j, 0, 0) for j in range(len(opts))]
        if ts.optional:
            choices.append(None)
        per_tier.append(choices)
    finals = list(range(len(space.final_answer))) if space.final_answer else [0]
    index = 0
    for choice in itertools.product(*per_tier):
        kept = [i for i, c in enumerate(choice) if c is not None]
        if not kept:
            continue
        spec_list = []
        for pos, i in enumerate(kept):
            k, temp, cond = options[i][choice[i][0]]  # type: ignore[index]
            st = dict(spec_tiers[i]) if isinstance(spec_tiers[i], dict) else {"model": spec_tiers[i]}
            for key, value in (("k", k), ("temperature", temp)):
                if value is not None:
                    st[key] = value
            st.pop("escalate_if", None)
            if pos < len(kept) - 1 and cond is not None:
                st["escalate_if"] = cond
            spec_list.append(st)
        votes = range(len(space.vote)) if space.vote else [0]
        for es, fa, ak, vo in itertools.product(
            range(len(space.early_stop)), finals, range(len(space.adaptive_k)), votes
        ):
            spec = copy.deepcopy(base)
            body = spec["strategy"]
            body["cascade"] = spec_list
            if space.final_answer:
                body["final_answer"] = space.final_answer[fa]
            # the space decides early stopping and adaptive k (the base's are not kept: list them)
            body.pop("early_stop", None)
            body.pop("adaptive_k", None)
            if space.early_stop[es] is not None:
                body["early_stop"] = {"round_size": space.early_stop[es]}
            if space.adaptive_k[ak] is not None:
                body["adaptive_k"] = dict(space.adaptive_k[ak])  # type: ignore[arg-type]
            if space.vote:  # the space decides the vote (null: majority); absent: the base's
                body.pop("vote", None)
                if space.vote[vo] is not None:
                    body["vote"] = dict(space.vote[vo])
            yield SpecCandidate(index, spec, tuple(kept), choice, es, fa, ak, vo)
            index += 1
