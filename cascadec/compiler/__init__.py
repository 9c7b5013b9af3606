"""Markers and YAML specs → checked, versioned execution plans.

Every entry point returns ``(plan, warnings)`` and raises a ``CascadecError`` carrying
located diagnostics for errors: ``MarkerError`` (E1xx) for a bad marker, ``SpecError``
(E2xx/E3xx) for a bad spec, ``CompileError`` (E4xx) when a static check fails, and code
E901 for I/O. ``check_spec_file`` is the one that never raises (for ``cascadec lint``).

There are two front doors and everything passes through one of them: ``compile_spec`` (a
file) and ``compile_spec_data`` (a spec in memory: a ``Spec`` or its plain data, as the bank
builder, the search space, the baselines and the reference strategy build theirs). Both run
the same validation, passes, checks and sealing; nothing is written to disk to compile.

The plan's ``source`` says where it came from and is *not* part of its content hash, so a
marker and its YAML twin give plans with the same hash and, but for ``source``, equal bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cascadec.compiler.context import Context, MarkerLocator, RegistryLike, resolve_registry, spec_registry
from cascadec.compiler.pipeline import build_plan, compile_strategy
from cascadec.compiler.verify import check_load_settings, verify_plan
from cascadec.errors import CascadecError, DataError, Diagnostic, MarkerError
from cascadec.marker import analyze_marker
from cascadec.plan import Plan, PlanModel, PlanStrategy, load_plan
from cascadec.registry import ModelEntry, ModelRegistry
from cascadec.spec.from_marker import spec_from_marker
from cascadec.spec.loader import SpecDocument, load_spec, validate_spec
from cascadec.spec.model import Spec

__all__ = [
    "check_load_settings",
    "check_spec_file",
    "compile_marker",
    "compile_markers",
    "compile_spec",
    "compile_spec_data",
    "load_any",
    "plan_registry",
    "verify_plan",
]


def _marker_strategy(
    text: str, registry, *, source: str, line: int, column: int
) -> tuple[str, PlanStrategy, dict[str, PlanModel], list[Diagnostic]]:
    # the marker layer parses and reports what stops it; the warning rules run once, in the passes
    marker, errors = analyze_marker(
        text, registry, source=source, line=line, column_offset=column - 1, warnings=False
    )
    if marker is None or errors:
        raise MarkerError(errors[0], diagnostics=errors)
    ctx = Context(registry, MarkerLocator(source, text.strip(), line, column, place=marker.place))
    strategy, models, diags = compile_strategy(spec_from_marker(marker), ctx)
    return str(marker), strategy, models, diags


def compile_marker(
    text: str, registry: RegistryLike = None, *, source: str = "<marker>", line: int = 1, column: int = 1
) -> tuple[Plan, list[Diagnostic]]:
    """One marker → a one-strategy plan whose key is the marker's canonical text."""
    reg = resolve_registry(registry)
    _, strategy, models, diags = _marker_strategy(text, reg, source=source, line=line, column=column)
    return build_plan([strategy], models, source), diags


def compile_markers(
    texts: Iterable[str],
    registry: RegistryLike = None,
    *,
    source: str = "<markers>",
    locations: Sequence[tuple[int, int]] | None = None,
) -> tuple[Plan, list[Diagnostic]]:
    """A table's per-row markers → one plan, one strategy per distinct canonical marker.

    ``locations[i]`` is (line, column) of text i in ``source`` (default: line i+1). Every bad
    row is reported, not just the first; warnings are reported once per distinct marker.
    """
    reg = resolve_registry(registry)
    strategies: dict[str, PlanStrategy] = {}
    models: dict[str, PlanModel] = {}
    diags: list[Diagnostic] = []
    errors: list[Diagnostic] = []
    seen: set[str] = set()
    for i, text in enumerate(texts):
        line, column = locations[i] if locations else (i + 1, 1)
        if text.strip() in seen:
            continue
        seen.add(text.strip())
        try:
            key, strategy, found_models, found = _marker_strategy(
                text, reg, source=source, line=line, column=column
            )
        except CascadecError as exc:
            errors.extend(exc.diagnostics or [Diagnostic(exc.code, exc.message, line, column, source)])
            continue
        if key not in strategies:
            strategies[key] = strategy
            models.update(found_models)
            diags.extend(found)
    if errors:
        raise MarkerError(errors[0], diagnostics=errors + diags)
    if not strategies:
        raise DataError(f"{source}: no markers to compile")
    return build_plan(list(strategies.values()), models, source), diags


def compile_spec(path: str | Path, registry: RegistryLike = None) -> tuple[Plan, list[Diagnostic]]:
    """A YAML spec file → a one-strategy plan. ``registry`` (``--models``) overrides the spec's ``models:``."""
    spec, doc = load_spec(path)
    return _compile(spec, doc, registry, Path(path).parent, Path(path).stem)


def _compile(
    spec: Spec, doc: SpecDocument, registry: RegistryLike, base: Path | None, fallback_key: str
) -> tuple[Plan, list[Diagnostic]]:
    """The one path every spec takes: its registry, the passes, the checks, a sealed plan."""
    reg = spec_registry(registry, spec.models, doc, base)
    strategy, models, diags = compile_strategy(spec, Context(reg, doc, base), fallback_key=fallback_key)
    return build_plan([strategy], models, doc.source), diags


def compile_spec_data(
    spec: Spec | Mapping[str, Any],
    registry: RegistryLike = None,
    *,
    base_dir: str | Path | None = None,
    source: str = "<spec>",
    fallback_key: str = "strategy",
) -> tuple[Plan, list[Diagnostic]]:
    """A spec in memory (a ``Spec`` or the data a YAML spec holds) → a one-strategy plan.

    The same validation (E2xx), passes and static checks (E4xx) and the same sealed plan as
    :func:`compile_spec` on a file holding that data. ``registry`` (``--models``) overrides the
    spec's ``models:``; a relative ``models:`` path resolves against ``base_dir``. Diagnostics
    are located at ``source`` (there is no text to point into); an unnamed spec without a
    canonical marker is keyed ``fallback_key``.
    """
    doc = SpecDocument(source, "", spec if isinstance(spec, Spec) else dict(spec), {}, {})
    parsed = spec if isinstance(spec, Spec) else validate_spec(doc)
    return _compile(parsed, doc, registry, None if base_dir is None else Path(base_dir), fallback_key)


def plan_registry(plan: Plan) -> ModelRegistry:
    """The registry a plan's models make (each under its id and the aliases its tiers used), so
    more strategies over the same models compile with the same costs and limits — e.g. a
    bank's baselines when the only record of its models is the bank's ``plan.json``."""
    aliases: dict[str, list[str]] = {key: [] for key in plan.models}
    for strategy in plan.strategies:
        for t in strategy.tiers:
            if t.alias and t.alias != t.model and t.alias not in aliases[t.model]:
                aliases[t.model].append(t.alias)
    entries = tuple(
        ModelEntry(
            id=key,
            aliases=tuple(aliases[key]),
            path=None if m.path == key else m.path,
            params=m.params,
            greedy_only=m.greedy_only,
            tensor_parallel_size=m.tensor_parallel_size,
            max_model_len=m.max_model_len,
            dtype=m.dtype,
            gpu_memory_utilization=m.gpu_memory_utilization,
            trust_remote_code=m.trust_remote_code,
        )
        for key, m in plan.models.items()
    )
    return ModelRegistry(models=entries)  # source <memory>: paths are taken as the plan has them


def load_any(target: str, registry: RegistryLike = None) -> tuple[Plan, list[Diagnostic]]:
    """A plan (.json), a spec (.yaml/.yml) or marker text → a plan."""
    lower = target.lower()
    if lower.endswith(".json"):
        plan = load_plan(target)
        diags = verify_plan(plan, target)
        return plan, diags + check_load_settings(plan, registry, target)  # trust is not in a hash
    if lower.endswith((".yaml", ".yml")):
        return compile_spec(target, registry)
    return compile_marker(target, registry)


def check_spec_file(path: str | Path, registry: RegistryLike = None) -> list[Diagnostic]:
    """Every finding for a spec file, errors included. Never raises for bad input."""
    try:
        return compile_spec(path, registry)[1]
    except CascadecError as exc:
        return exc.diagnostics or [Diagnostic(exc.code, exc.message, source=str(path))]
    except Exception as exc:  # a bug must not hide the other files' findings in lint
        return [
            Diagnostic(
                "E999",
                f"internal error while checking the spec: {type(exc).__name__}: {exc}",
                source=str(path),
            )
        ]
