"""What every compiler pass reads but never changes: the registry and where things were written.

A ``Locator`` turns a path into the spec (``("strategy", "cascade", 0, "k")``) into a located
diagnostic. YAML specs locate through their ``SpecDocument``; markers have no structure to
point into, so everything is located at the marker itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cascadec.core.printer import format_number
from cascadec.core.tier_rules import Finding
from cascadec.errors import CascadecError, Diagnostic, RegistryError, SpecError, caret_excerpt
from cascadec.marker.checks import MarkerPlace
from cascadec.registry import ModelRegistry, RegistryLike, resolve_registry

NodePath = tuple[str | int, ...]


class Locator(Protocol):
    source: str

    def diag(
        self, code: str, message: str, path: NodePath = (), *, key: bool = False, fix: str | None = None
    ) -> Diagnostic: ...

    def text_start(self, path: NodePath) -> tuple[int, int]: ...


@dataclass(frozen=True)
class MarkerLocator:
    """Locates every finding at the marker text (a cell of a table, a line of a file, ``--marker``)."""

    source: str = "<marker>"
    text: str = ""
    line: int = 1
    column: int = 1
    place: MarkerPlace | None = None  # the marker's tokens: core findings point at theirs

    def diag(
        self, code: str, message: str, path: NodePath = (), *, key: bool = False, fix: str | None = None
    ) -> Diagnostic:
        excerpt = caret_excerpt(self.text, 1, 1, max(len(self.text), 1)) if self.text else ""
        return Diagnostic(code, message, self.line, self.column, self.source, excerpt, fix)

    def text_start(self, path: NodePath) -> tuple[int, int]:
        return self.line, self.column


@dataclass(frozen=True)
class Context:
    registry: ModelRegistry
    locator: Locator
    base: Path | None = None  # the spec's folder: relative paths in it (a route's router) resolve here


def yaml_fix(f: Finding) -> str | None:
    """A core finding's fix in YAML spec syntax."""
    if f.code == "W101" and f.suggest:
        model, k, t = f.suggest
        return f"write it as a majority vote: mv: {{model: {model}, k: {k}, temperature: {format_number(t)}}}"
    if f.code == "W103":
        return "write k: 1, temperature: 0"
    if f.code == "E104":
        return "use k: 1, or sample with temperature 0.7"
    if f.code == "E105" and f.matches:
        return f"did you mean {' or '.join(f.matches)}?"
    return None


def report(ctx: Context, f: Finding, path: NodePath, *, key: bool = False) -> Diagnostic:
    """A :mod:`cascadec.core.tier_rules` finding, located and worded by the front-end it came from."""
    if isinstance(ctx.locator, MarkerLocator) and ctx.locator.place is not None:
        return ctx.locator.place.report(f)
    return ctx.locator.diag(f.code, f.message, path, key=key, fix=yaml_fix(f))


def spec_registry(
    arg: RegistryLike, models: str | None, locator: Locator, base: Path | None
) -> ModelRegistry:
    """The registry a spec compiles against: the caller's (--models) wins over the spec's ``models:``."""
    try:
        return resolve_registry(arg if arg is not None else models, base=base)
    except RegistryError as exc:
        if arg is not None:
            raise
        d = locator.diag("E300", exc.message, ("models",))
        raise SpecError(d.message, code="E300", diagnostics=[d]) from None


def tidy(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Without repeats (a strategy-wide rule is checked once per tier), in file order."""
    unique = list(dict.fromkeys(diagnostics))
    return sorted(unique, key=lambda d: (d.source, d.line, d.column))


def raise_if_errors(diagnostics: list[Diagnostic]) -> None:
    """CompileError (static checks, E4xx) or SpecError (everything else) when any finding is an error."""
    from cascadec.errors import CompileError

    diagnostics = tidy(diagnostics)
    errors = [d for d in diagnostics if d.is_error]
    if not errors:
        return
    cls = CompileError if any(d.code.startswith("E4") for d in errors) else SpecError
    raise cls(errors[0].message, code=errors[0].code, diagnostics=diagnostics)


__all__ = [
    "CascadecError",
    "Context",
    "Locator",
    "MarkerLocator",
    "NodePath",
    "RegistryLike",
    "raise_if_errors",
    "resolve_registry",
    "spec_registry",
]
