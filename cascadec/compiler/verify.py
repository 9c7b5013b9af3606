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
from cascadec.errors import CascadecError, CompileError, Diagnostic
from cascadec.plan import Plan, PlanStrategy
from cascadec.registry import ModelRegistry

__all__ = ["verify_plan"]


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
