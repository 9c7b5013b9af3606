"""What a request's ``model`` names: a spec from ``--specs``, a marker, or a plain model.

The name is compiled exactly as ``cascadec compile --models REGISTRY`` would (same
compiler, same registry, same static checks), once: compiled strategies are cached. A name
that is not even the start of a marker is an unknown model (404); a marker with a mistake
in it is a bad request (400) carrying the marker's diagnostic code and caret excerpt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from cascadec.compiler import compile_marker, compile_spec
from cascadec.compiler.context import resolve_registry
from cascadec.errors import CascadecError, MarkerError
from cascadec.plan import Plan, PlanModel, PlanStrategy
from cascadec.runtime.routing import worst_case_samples
from cascadec.serve.errors import ServeError, invalid, not_found

CACHE_SIZE = 512  # distinct compiled names kept (metrics label one series per strategy)


@dataclass(frozen=True)
class Served:
    """One servable strategy and the plan it was compiled into."""

    name: str  # what clients pass as ``model``
    plan: Plan
    strategy: PlanStrategy

    @property
    def worst_case_samples(self) -> int:
        total = sum(worst_case_samples(t) for t in self.strategy.tiers)
        budget = self.strategy.budget.max_samples_per_problem if self.strategy.budget else None
        return min(total, budget) if budget is not None else total


class Catalog:
    """Resolves model names to compiled strategies; knows every model of the registry."""

    def __init__(self, models: str | None = None, specs: Path | None = None, max_samples: int = 64):
        self.registry = resolve_registry(models)
        self.max_samples = max_samples
        self.models: dict[str, PlanModel] = {}
        # a registry name that is no marker (gpt-4, an org-less id): compiled as a name of it that is
        self._marker_of: dict[str, str] = {}
        for entry in self.registry.models:  # each model's load settings, as the compiler writes them
            plan = marker = None
            for name in (entry.id, *entry.aliases):
                try:
                    plan, _ = compile_marker(name, self.registry)
                except MarkerError:
                    continue
                marker = name
                break
            if plan is None:
                raise CascadecError(
                    f"model {entry.id!r}: neither its id nor an alias is a marker; give it a size-like "
                    "alias (e.g. 4gpt) to serve it",
                    code="E300",
                )
            self.models[entry.id] = plan.models[entry.id]
            self._marker_of.update({name: marker for name in (entry.id, *entry.aliases)})
        self.specs: dict[str, Served] = {}
        origin: dict[str, Path] = {}
        models = {name for entry in self.registry.models for name in (entry.id, *entry.aliases)}
        for path in sorted(specs.glob("*.y*ml")) if specs is not None else []:
            plan, _ = compile_spec(path, self.registry)  # a broken spec stops the server at startup
            for s in plan.strategies:
                # one name, one strategy: never a spec silently shadowing another, or a model
                if s.key in origin:
                    raise CascadecError(
                        f"spec name {s.key!r} is also the name of {origin[s.key]}: "
                        "each served spec needs its own name",
                        code="E200",
                        where=path,
                    )
                if s.key in models:
                    raise CascadecError(
                        f"spec name {s.key!r} is a model of the registry: requests for that model "
                        "would get the spec; rename the spec",
                        code="E200",
                        where=path,
                    )
                origin[s.key] = path
                self.specs[s.key] = Served(s.key, plan, s)
        self._cache: OrderedDict[str, Served] = OrderedDict()
        self._lock = Lock()

    @property
    def reference(self) -> PlanModel:
        """The largest model: costs are reported relative to it answering alone."""
        return max(self.models.values(), key=lambda m: (m.params, m.id))

    def names(self, served_models: Container[str] | None = None) -> list[str]:
        """What ``/v1/models`` lists: the specs, then each (served) model's id and aliases."""
        out = list(self.specs)
        for entry in self.registry.models:
            if served_models is None or entry.id in served_models:
                out += [entry.id, *entry.aliases]
        return out

    def resolve(self, name: str) -> Served:
        """The strategy ``name`` denotes; a :class:`ServeError` (400/404/422) when there is none."""
        if not isinstance(name, str) or not name.strip():
            raise invalid("model must be a marker, a spec name or a model alias", param="model")
        name = name.strip()
        served = self.specs.get(name)
        if served is None:
            with self._lock:
                served = self._cache.get(name)
                if served is not None:
                    self._cache.move_to_end(name)
            if served is None:
                served = self._compile(name)
                with self._lock:
                    self._cache[name] = served
                    while len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
        if served.worst_case_samples > self.max_samples:
            raise invalid(
                f"{name} may draw up to {served.worst_case_samples} samples per request; "
                f"this server allows {self.max_samples} (--max-samples)",
                param="model",
            )
        return served

    def _compile(self, name: str) -> Served:
        try:
            plan, _ = compile_marker(self._marker_of.get(name, name), self.registry, source="model")
        except MarkerError as exc:
            if exc.code == "E100" and exc.column == 1:  # not a marker at all: an unknown name
                raise not_found(self._unknown(name)) from None
            raise ServeError(400, f"invalid marker: {exc}", code=exc.code, param="model") from None
        except CascadecError as exc:
            text = "\n".join(d.format() for d in exc.diagnostics) or exc.message
            raise ServeError(
                400, f"invalid strategy {name!r}: {text}", code=exc.code, param="model"
            ) from None
        missing = [m for m in plan.models if m not in self.models]
        if missing:
            raise not_found(f"model {missing[0]!r} is not served here; {self._known()}")
        return Served(name, plan, plan.strategies[0])

    def _unknown(self, name: str) -> str:
        return f"the model {name!r} does not exist: pass a marker, a spec name or a model; {self._known()}"

    def _known(self) -> str:
        specs = ", ".join(self.specs) or "none"
        models = ", ".join(a for e in self.registry.models for a in (*e.aliases, e.id)[:1])
        return f"specs: {specs}; models: {models}"
