"""Every error cascadec raises, the ONE registry of diagnostic codes, and the ONE exit-code rule.

Codes are part of the public contract (CI scripts grep for them): never renumber one. The
first letter is the severity: ``E`` error, ``W`` warning. :data:`CODES` is the registry: every
code the source uses is registered there (a unit test scans the source), and the README's table
is generated from it (``make generate``; a unit test compares).

Exit codes, the same for every command (:func:`exit_code`): 0 ok, 1 findings or bad input,
2 usage or I/O, 3 an internal bug. An error's code decides between 1 and 2 (:attr:`Code.exit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from cascadec.redact import redact

Severity = Literal["error", "warning"]


class ExitCode(IntEnum):
    """What a command's exit status means."""

    OK = 0
    FINDINGS = 1  # errors in the input (or warnings under --strict), bad data, a failed run
    USAGE = 2  # wrong options, a file that is missing or cannot be read or written
    INTERNAL = 3  # a bug in cascadec: please report it


@dataclass(frozen=True)
class Code:
    """One registered diagnostic code."""

    code: str
    summary: str
    exit: ExitCode = ExitCode.FINDINGS
    http: int | None = None  # the status ``cascadec serve`` answers it with (default: see ``status``)

    @property
    def severity(self) -> Severity:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def status(self) -> int:
        """HTTP status: the registered one, else 500 for a bug and 400 for anything in the request."""
        if self.http is not None:
            return self.http
        return 500 if self.exit is ExitCode.INTERNAL else 400


_USAGE = ExitCode.USAGE
CODES: dict[str, Code] = {
    c.code: c
    for c in (
        Code(
            "E100", "marker syntax error (at the first character where the text stops being a valid marker)"
        ),
        Code("E101", "empty marker"),
        Code("E102", "k must be an integer >= 1"),
        Code("E103", "temperature must be in [0, 2]"),
        Code("E104", "k > 1 at temperature 0: every sample would be identical"),
        Code("E105", "unknown model alias (with close matches)"),
        Code("W101", "cascade with a single tier (it is a plain majority vote)"),
        Code("W102", "a tier's model is cheaper than the tier before it"),
        Code(
            "W103",
            "greedy-only model (72B) asked for k > 1 or T > 0: it runs k1_t0.0, as in the original system",
        ),
        Code("W104", "full model id not in the registry (runs as given; cost guessed from its name)"),
        Code("E200", "spec does not match the schema (wrong type, missing field, bad value)"),
        Code("E201", 'unknown key in a spec (with "did you mean")'),
        Code("E202", "duplicate key in YAML"),
        Code("E203", "YAML syntax error, or a document that is empty, binary or not a mapping"),
        Code("E204", "forbidden YAML construct (Python/custom tags, alias explosion)"),
        Code("E205", "unsupported spec version"),
        Code("E210", "condition syntax error"),
        Code("E211", "unknown signal in a condition"),
        Code("E212", "condition type error"),
        Code(
            "E300",
            "model registry error (malformed, duplicate alias); one that is missing or unreadable is E901",
        ),
        Code("E400", "static check failed (threshold unreachable, budget impossible, ...)"),
        Code("W400", "static check warning (threshold never fires, tier can never run, ...)"),
        Code("E401", "plan file is not a valid plan"),
        Code("E402", "plan has an unknown schema_version"),
        Code(
            "E403",
            "a plan file's load settings (trust_remote_code, path, dtype, ...) are not what the registry "
            "it is checked against lists (--models, else the shipped ones): refused where they take effect",
        ),
        Code(
            "W402",
            "a plan file's load settings are not vouched for by a registry: it runs on replay and OpenAI "
            "endpoints only (a backend that loads weights refuses it, E403)",
        ),
        Code(
            "E404",
            "router error: a route's router artifact is missing, damaged, not what the plan's hash names, "
            "or has no estimate for a tier's model",
        ),
        Code("E500", "data error (unreadable table content, missing column, bad rows)"),
        Code("E501", "backend error (engine not installed, sample bank lacks samples, ...)", http=502),
        Code(
            "E502",
            "output folder error: it holds files cascadec did not write (refused, --overwrite or not), "
            "another kind of output, another writer; resume mismatch, corrupt results",
        ),
        Code("E600", "serve: unknown model name, or a model no engine serves (HTTP 404)", http=404),
        Code("E601", "serve: request too large: body or problem text over the limit (HTTP 413)", http=413),
        Code(
            "E602",
            "serve: invalid request: malformed JSON, unknown field, n > 1, too many samples (HTTP 400/422)",
            http=422,
        ),
        Code(
            "E603",
            "serve: an upstream engine failed (HTTP 502) or is unreachable, dead or too slow (HTTP 503: "
            "UpstreamUnavailable); the message names the tier",
            http=502,
        ),
        Code("E604", "serve: too many requests in flight (HTTP 429)", http=429),
        Code("E605", "serve: missing or wrong bearer token (HTTP 401)", http=401),
        Code("E606", "serve: no such route (HTTP 404) or method (HTTP 405)", http=404),
        Code(
            "E607",
            "serve: the strategy routes each problem by a data column (adaptive_k.column, e.g. bucket) "
            "the request does not give (HTTP 400; the spec is never run without it); a column no "
            "request can carry (it collides with a request field) stops the server at start-up",
        ),
        Code(
            "E700",
            "calibrate/optimize: no configuration of the search space meets the target on held-out problems",
        ),
        Code("E701", "calibrate/optimize: bad target or split (a split too small to certify anything)"),
        Code("E900", "usage error (a missing, malformed or contradictory option or argument)", _USAGE),
        Code(
            "E901", "I/O error: an input file is missing or unreadable, an output cannot be written", _USAGE
        ),
        Code("E999", "internal error: a bug in cascadec (please report it)", ExitCode.INTERNAL),
    )
}


def registered(code: str) -> Code:
    """The registry entry of ``code``; an unregistered code is a bug in cascadec."""
    try:
        return CODES[code]
    except KeyError:
        raise ValueError(f"diagnostic code {code!r} is not registered in cascadec.errors.CODES") from None


def code_table() -> str:
    """The README's table of codes, generated from :data:`CODES`."""
    rows = ["| code | severity | exit | HTTP | what |", "|---|---|---|---|---|"]
    for c in CODES.values():
        warning = c.severity == "warning"
        exit_text = "-" if warning else str(int(c.exit))
        http = "-" if warning else str(c.status)
        rows.append(f"| {c.code} | {c.severity} | {exit_text} | {http} | {c.summary} |")
    return "\n".join(rows) + "\n"


def exit_code(outcome: BaseException | None = None, *, findings: bool = False) -> ExitCode:
    """The one rule every command exits by.

    ``None`` is success (``findings`` when the command reported errors in its input); a
    :class:`CascadecError` exits by its code's registry entry; a usage error from the command
    line parser and an ``OSError`` are usage/I/O; anything else is an internal bug.
    """
    if outcome is None:
        return ExitCode.FINDINGS if findings else ExitCode.OK
    if isinstance(outcome, CascadecError):
        return CODES[outcome.code].exit if outcome.code in CODES else ExitCode.INTERNAL
    if isinstance(outcome, OSError):
        return ExitCode.USAGE
    if type(outcome).__name__ in ("UsageError", "BadParameter", "NoSuchOption", "MissingParameter"):
        return ExitCode.USAGE  # click's own (typer) parsing errors
    return ExitCode.INTERNAL


def error_text(outcome: BaseException) -> str:
    """How every command shows an error, always with a registered code: a cascadec error's
    located diagnostics (``path:line:col: CODE message``, one a line) or ``error: where: CODE
    message``; an ``OSError`` is E901; anything else is a bug, E999."""
    if isinstance(outcome, CascadecError):
        if outcome.diagnostics:
            return "\n".join(d.format() for d in outcome.diagnostics)
        return f"error: {outcome}"
    if isinstance(outcome, OSError):
        where = f"{outcome.filename}: " if outcome.filename else ""
        return redact(f"error: {where}E901 {outcome.strerror or outcome}")
    return redact(
        f"cascadec: E999 internal error: {type(outcome).__name__}: {outcome}\n"
        "(set CASCADEC_DEBUG=1 for the traceback)"
    )


def error_exit(outcome: BaseException) -> SystemExit:
    """The one place an error is printed and mapped to an exit status: writes
    :func:`error_text` to stderr and returns the ``SystemExit`` to raise (``raise error_exit(exc)``)."""
    import sys

    sys.stderr.write(error_text(outcome) + "\n")
    return SystemExit(int(exit_code(outcome)))


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

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        where: object = None,
        diagnostics: list[Diagnostic] | None = None,
    ):
        message = redact(message)  # an upstream's error may echo a key: never shown, never logged
        super().__init__(message)
        if code is not None:
            self.code = code
        registered(self.code)  # an unregistered code fails loudly, where it is raised
        self.message = message
        self.where = None if where is None else str(where)  # the file, row or run dir at fault
        self.diagnostics: list[Diagnostic] = list(diagnostics or [])

    def __str__(self) -> str:
        """``where: CODE message``: the code is printed here, never written into messages."""
        return f"{self.where}: {self.code} {self.message}" if self.where else f"{self.code} {self.message}"


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


class UsageError(CascadecError):
    """A missing, malformed or contradictory option (exit 2): the one way a usage error is raised."""

    code = "E900"


class InputFileError(DataError):
    """An input file that does not exist or cannot be read (exit 2, like every I/O error)."""

    code = "E901"


class BackendError(CascadecError):
    code = "E501"


class UpstreamUnavailable(BackendError):
    """An engine that cannot be reached, lost the connection, died or did not answer in time:
    ``cascadec serve`` answers 503 (retry later), where another backend error is 502."""

    http = 503


class RunDirError(CascadecError):
    code = "E502"
