"""Plans are verified, never trusted: a plan file passes the compiler's static checks again.

A content hash proves a plan was not damaged, not that it is sound — anyone can compute a
sha256. So a plan read from a file (or handed over as an object) gets the very checks a
compiled strategy gets (``CHECKS``: T = 0 ⇒ k = 1, reachable thresholds, budgets ...), plus
the references the schema cannot express (every tier's model is in ``models``, every condition
parses and type-checks), before anything is written or any model loads. The bounds (k, tiers,
max_tokens) are in the plan's schema itself (``cascadec.plan``).
"""

from __future__ import annotations

from cascadec.compiler.checks import CHECKS
from cascadec.compiler.context import Context, NodePath, raise_if_errors
from cascadec.core.conditions import parse_condition
from cascadec.errors import CascadecError, CompileError, Diagnostic, PlanError
from cascadec.plan import Plan, PlanModel, PlanStrategy
from cascadec.registry import ModelRegistry, RegistryLike, load_registry, resolve_registry

__all__ = ["LOAD_SETTINGS", "UNVOUCHED", "check_load_settings", "verify_plan"]

# what a plan says about loading a model, copied from a registry at compile time: the hash proves
# these bytes were not damaged, never that the registry said so (anyone can recompute a sha256)
LOAD_SETTINGS = (
    "path",
    "greedy_only",
    "trust_remote_code",
    "tensor_parallel_size",
    "max_model_len",
    "dtype",
    "gpu_memory_utilization",
)
UNVOUCHED = "W402"  # cascadec.runtime.session refuses it for backends that load weights (E403)


class PlanLocator:
    """Locates a finding in a plan file: line 1 (plans are machine-written), path in the message."""

    def __init__(self, source: str, prefix: NodePath = ()):
        self.source = source
        self.prefix = prefix

    def diag(
        self, code: str, message: str, path: NodePath = (), *, key: bool = False, fix: str | None = None
    ) -> Diagnostic:
        where = _dotted((*self.prefix, *path))
        return Diagnostic(code, f"{message} (at {where})" if where else message, 1, 1, self.source, "", fix)

    def text_start(self, path: NodePath) -> tuple[int, int]:
        return 1, 1


def _dotted(path: NodePath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _references(s: PlanStrategy, plan: Plan, loc: PlanLocator) -> list[Diagnostic]:
    out = []
    for j, t in enumerate(s.tiers):
        if t.model not in plan.models:
            out.append(loc.diag("E401", f"tier model {t.model!r} is not in the plan's models", ("tiers", j)))
        elif plan.models[t.model].greedy_only and (t.k > 1 or t.temperature > 0):
            # the compiler runs such a tier as k1_t0.0 (W103); a plan asking more was not compiled so
            out.append(
                loc.diag(
                    "E400",
                    f"model {t.model!r} is greedy-only, but the tier asks k={t.k} at T={t.temperature:g}; "
                    "a compiled plan runs it at k=1, T=0",
                    ("tiers", j),
                )
            )
        for name, text in (
            ("escalate_if", t.escalate_if),
            ("retry", t.retry.when if t.retry else None),
            ("explore", t.explore.when if t.explore else None),
        ):
            if text is None:
                continue
            try:
                parse_condition(text)
            except CascadecError as exc:
                out.append(loc.diag(exc.code, f"bad condition: {exc.message}", ("tiers", j, name)))
    return out


def verify_plan(plan: Plan, source: str | None = None) -> list[Diagnostic]:
    """Warnings of a sound plan; CompileError (E4xx) / SpecError with every finding otherwise."""
    source = source or plan.source or "<plan>"
    ctx_registry = ModelRegistry(models=())
    diags: list[Diagnostic] = []
    for i, s in enumerate(plan.strategies):
        loc = PlanLocator(source, ("strategies", i))
        found = _references(s, plan, loc)
        if not found:  # the checks assume the references hold
            where = tuple(("tiers", j) for j in range(len(s.tiers)))
            ctx = Context(ctx_registry, loc)
            for check in CHECKS:
                found.extend(check(s, where, ctx))
        diags.extend(found)
    if any(d.is_error for d in diags):
        try:
            raise_if_errors(diags)
        except CompileError:
            raise
        except CascadecError as exc:  # a plan's findings are plan errors whatever their code
            raise CompileError(exc.message, code=exc.code, diagnostics=exc.diagnostics) from None
    return diags


def _shipped_registries() -> list[ModelRegistry]:
    from cascadec.resources import data_dir

    out = []
    for path in sorted((data_dir("specs") / "models").glob("*.yaml")):
        try:
            out.append(load_registry(path))
        except CascadecError:
            continue
    return out


def _settings(model: PlanModel) -> dict:
    return {name: getattr(model, name) for name in LOAD_SETTINGS}


def _plain(model: PlanModel) -> bool:
    """What compiling gives a model id no registry lists (W104): the hub id, default settings."""
    defaults = {n: PlanModel.model_fields[n].default for n in LOAD_SETTINGS if n != "path"}
    return model.path == model.id and all(getattr(model, n) == v for n, v in defaults.items())


def _vouched(model: PlanModel, registry: ModelRegistry) -> bool:
    entry = registry.get(model.id)
    if entry is None or entry.id != model.id:
        return False
    listed = {
        "path": registry.weights_path(entry),
        "greedy_only": entry.greedy_only,
        "trust_remote_code": entry.trust_remote_code,
        "tensor_parallel_size": entry.tensor_parallel_size,
        "max_model_len": entry.max_model_len,
        "dtype": entry.dtype,
        "gpu_memory_utilization": entry.gpu_memory_utilization,
    }
    return listed == _settings(model)


def check_load_settings(
    plan: Plan, registry: RegistryLike = None, source: str | None = None
) -> list[Diagnostic]:
    """Check a plan *file*'s load settings against a registry: the one given (``--models``), else
    the shipped ones. A model they do not list with exactly these settings (a ``path`` or
    ``dtype`` of the file's own) is a W402 warning — a backend that loads weights refuses the
    plan (E403), replay and OpenAI endpoints load nothing from it; ``trust_remote_code: true``
    nobody vouches for is refused here (E403): it would run the plan author's code."""
    source = source or plan.source or "<plan>"
    if registry is not None:
        registries = [resolve_registry(registry)]
        named = f"registry {registries[0].source}"
    else:
        registries = _shipped_registries()
        named = "the shipped registries (pass --models REGISTRY to check against yours)"
    found = []
    for key, model in plan.models.items():
        if _plain(model) or any(_vouched(model, r) for r in registries):
            continue
        shown = ", ".join(
            f"{n}={v!r}"
            for n, v in _settings(model).items()
            if not (v is None or v is False or v == "auto" or (n == "tensor_parallel_size" and v == 1))
        )
        if model.trust_remote_code:
            raise PlanError(
                f"model {key!r} asks for trust_remote_code ({shown}) and {named} does not list it so: "
                "a plan file's hash proves it is intact, not that its settings are yours; compile the "
                "spec against your registry, or pass the registry that lists it with --models",
                code="E403",
                where=source,
            )
        found.append(
            Diagnostic(
                UNVOUCHED,
                f"model {key!r}: load settings {shown} are not what {named} lists for it; "
                "only backends that load no weights (replay, openai) run this plan",
                1,
                1,
                source,
            )
        )
    return found
