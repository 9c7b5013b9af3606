"""The search space's candidates for the simulator: a cascade spec plus a ``search:`` section.

The space's model, its loading (located errors) and its syntax live in ``cascadec.spec.space``
(the light layer ``cascadec lint`` and ``compile --check`` read); this module compiles the base
and every candidate through the compiler's front door (``compile_spec_data``): a candidate is
its spec data (``cascadec.spec.space.spec_candidates``) and the strategy the compiler makes of
it — checked and sealed like any spec, nothing patched by hand. A candidate the compiler
rejects is never simulated, certified or written: :class:`Expansion` keeps it apart, counted,
with its first error (``summary``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cascadec.compiler import compile_spec_data
from cascadec.errors import CascadecError, CompileError, Diagnostic, SpecError
from cascadec.plan import Plan, PlanStrategy
from cascadec.registry import ModelRegistry, RegistryLike, resolve_registry
from cascadec.spec.space import (
    Number,
    SearchSpace,
    TierSearch,
    count_candidates,
    load_space,
    spec_candidates,
    tier_options,
)

__all__ = [
    "Candidate",
    "Expansion",
    "Number",
    "Rejected",
    "SearchSpace",
    "TierSearch",
    "compile_base",
    "expand",
    "load_space",
    "rebase_paths",
    "require_candidates",
    "space_registry",
    "written_spec",
]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One point of the space: its compiled strategy (to simulate) and its spec data (to write)."""

    strategy: PlanStrategy
    spec: dict
    index: int = 0  # candidate-{index} in the space's expansion order


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A candidate the compiler refused: which one, what it chose, and the compiler's first error."""

    index: int
    choices: str
    error: Diagnostic

    def describe(self) -> str:
        what = f" ({self.choices})" if self.choices else ""
        return f"candidate-{self.index}{what}: {self.error.code} {self.error.message}"


class Expansion(list):
    """The candidates the compiler accepts, in expansion order (a list of :class:`Candidate`),
    with ``rejected`` beside them and ``total`` = accepted + rejected."""

    def __init__(self, candidates: list[Candidate], rejected: list[Rejected]):
        super().__init__(candidates)
        self.rejected = rejected
        self.total = len(candidates) + len(rejected)

    def summary(self, shown: int = 3) -> str:
        """'R of N candidates rejected by the compiler (never simulated): the first reasons'."""
        if not self.rejected:
            return ""
        first = "; ".join(r.describe() for r in self.rejected[:shown])
        more = f"; and {len(self.rejected) - shown} more" if len(self.rejected) > shown else ""
        return (
            f"{len(self.rejected)} of {self.total} candidates rejected by the compiler "
            f"(never simulated): {first}{more}"
        )


def space_registry(base: dict, source: Path | str) -> ModelRegistry:
    """The registry the base spec names (``models:``, relative to the space file; default registry without)."""
    models = base.get("models") if isinstance(base, dict) else None
    return resolve_registry(models, base=Path(source).parent)


def compile_base(base: dict, source: Path | str, registry: RegistryLike = None) -> Plan:
    """Compile the base spec in memory, a relative ``models:`` resolved next to the space file."""
    plan, _ = compile_spec_data(
        base, registry, base_dir=Path(source).parent, source=str(source), fallback_key=Path(source).stem
    )
    return plan


def expand(base: dict, space: SearchSpace, plan: Plan, registry: RegistryLike = None) -> Expansion:
    """Every candidate of the space, in a fixed order, each compiled (``plan``: the compiled base,
    :func:`compile_base`; ``registry``: default the one the base names, relative to ``plan.source``)."""
    options = tier_options(base, space)
    total = count_candidates(space, options)
    if total > space.max_candidates:
        raise SpecError(
            f"the search space has {total} candidates, more than max_candidates {space.max_candidates}",
            code="E200",
        )
    reg = registry if isinstance(registry, ModelRegistry) else None
    if reg is None:
        reg = resolve_registry(registry) if registry is not None else space_registry(base, plan.source)
    accepted: list[Candidate] = []
    rejected: list[Rejected] = []
    for cand in spec_candidates(base, space, options):
        key = f"candidate-{cand.index}"
        try:
            compiled, _ = compile_spec_data({**cand.spec, "name": key}, reg, source=key)
        except (SpecError, CompileError) as exc:
            errors = [d for d in exc.diagnostics if d.is_error] or [
                Diagnostic(exc.code, exc.message, source=key)
            ]
            rejected.append(Rejected(cand.index, cand.describe(space, options), errors[0]))
            continue
        accepted.append(Candidate(compiled.strategies[0], cand.spec, cand.index))
    return Expansion(accepted, rejected)


def require_candidates(expansion: Expansion) -> Expansion:
    """The expansion, or a CompileError (E400) when the compiler rejected every candidate."""
    if not expansion:
        first = expansion.rejected[0].error if expansion.rejected else None
        raise CompileError(
            f"the compiler rejects every candidate of the search space: {expansion.summary()}",
            code=first.code if first is not None and first.code.startswith(("E2", "E4")) else "E400",
        )
    return expansion


def written_spec(candidate: Candidate, source: Path, out_dir: Path, name: str) -> dict:
    """The spec data written for ``candidate``: named ``name``, a relative ``models:`` path rebased
    to ``out_dir`` — compiled from there first, so what is written compiles where it lands and is
    the very strategy that was simulated (else nothing is written: an E999, a bug)."""
    import os

    spec = {**rebase_paths(dict(candidate.spec), Path(source), Path(out_dir)), "name": name}
    models = spec.get("models")
    if isinstance(models, str) and models.endswith((".yaml", ".yml")) and not Path(models).is_absolute():
        # as it will resolve from out_dir, which may not exist yet ('..' through it fails on disk)
        models = os.path.normpath(Path(out_dir).resolve() / models)
    as_written = {**spec, "models": models}
    plan, _ = compile_spec_data(as_written, base_dir=out_dir, source=str(Path(out_dir) / f"{name}.yaml"))
    got = plan.strategies[0].model_copy(update={"key": candidate.strategy.key})
    if got != candidate.strategy:
        raise CascadecError(
            f"candidate-{candidate.index} compiles differently where it is written ({out_dir}); nothing written",
            code="E999",
        )
    return spec


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
