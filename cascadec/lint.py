"""``cascadec lint``: find every bad marker or spec before it reaches a GPU.

Reads marker files (one a line, ``#`` comments), ``-`` for stdin, YAML specs, JSON plans and
the strategy column of CSV / JSONL / parquet tables. Never raises for bad input: problems
with the input itself (unreadable file, missing column) are I/O errors (exit 2), findings
inside it are diagnostics (exit 1 when any is an error).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cascadec.errors import CascadecError, Diagnostic, ExitCode, exit_code
from cascadec.limits import MAX_MARKER_FILE_BYTES, check_regular_file, read_regular_file
from cascadec.lint_batch import lint_markers
from cascadec.registry import ModelRegistry, resolve_registry

TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq"}
SPEC_SUFFIXES = {".yaml", ".yml"}


@dataclass
class LintResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    io_errors: list[str] = field(default_factory=list)
    checked: int = 0
    notes: list[str] = field(default_factory=list)  # one line per search space: its size

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    def exit_code(self, strict: bool = False) -> ExitCode:
        if self.io_errors:
            return exit_code(LintInputError("input cannot be linted"))
        return exit_code(findings=bool(self.errors or (strict and self.warnings)))


class LintInputError(CascadecError):
    """The input itself cannot be linted (I/O, encoding, missing column): E901, exit 2."""

    code = "E901"


def lint_paths(
    paths: list[str], *, column: str = "strategy", registry: str | Path | None = None
) -> LintResult:
    result = LintResult()
    reg = resolve_registry(registry)
    for path in paths:
        try:
            for diagnostic in _lint_one(path, column, reg, registry, result):
                result.diagnostics.append(diagnostic)
        except LintInputError as exc:
            result.io_errors.append(f"{path}: {exc.code} {exc.message}")
        except CascadecError as exc:  # an I/O bound (special file, size) of this file only
            result.io_errors.append(f"{path}: {exc.code} {exc.message}")
        except RecursionError:
            result.io_errors.append(f"{path}: E901 nested too deeply to read")
        except Exception as exc:  # a bug must not hide the other files' findings
            result.diagnostics.append(
                Diagnostic("E999", f"internal error while linting: {type(exc).__name__}", source=str(path))
            )
    return result


def _lint_one(
    path: str, column: str, reg: ModelRegistry, registry_arg, result: LintResult
) -> Iterator[Diagnostic]:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_MARKER_FILE_BYTES + 1)
        if len(data) > MAX_MARKER_FILE_BYTES:
            raise LintInputError(f"more than {MAX_MARKER_FILE_BYTES} bytes on stdin")
        yield from _lint_marker_lines(_decode(data, "-"), "-", reg, result)
        return
    p = Path(path)
    if p.is_dir():
        raise LintInputError("is a directory (pass the files to lint)")
    suffix = p.suffix.lower()
    if suffix in SPEC_SUFFIXES:
        yield from _lint_spec(p, registry_arg, result)
    elif suffix == ".json":
        yield from _lint_plan(p, result)
    elif suffix in TABLE_SUFFIXES:
        yield from _lint_table(p, suffix, column, reg, result)
    else:
        yield from _lint_marker_lines(_decode(_read_bytes(p), path), path, reg, result)


def _read_bytes(p: Path) -> bytes:
    try:
        return read_regular_file(p, MAX_MARKER_FILE_BYTES, "file to lint")
    except CascadecError as exc:
        raise LintInputError(exc.message) from None


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LintInputError(f"not UTF-8 text (byte {exc.start}); is it a binary file?") from None


def _lint_marker_lines(
    text: str, source: str, reg: ModelRegistry, result: LintResult
) -> Iterator[Diagnostic]:
    cells = []
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split("#", 1)[0]
        if content.strip():
            cells.append((number, 0, content.rstrip()))
    result.checked += len(cells)
    for _, diagnostics in lint_markers(cells, reg, source):
        yield from diagnostics


def table_cells(p: Path, suffix: str, column: str) -> Iterator[tuple[int, int, object]]:
    """(line, column offset, value) of every cell of ``column``."""
    if suffix in (".parquet", ".pq"):
        yield from _parquet_cells(p, column)
        return
    text = _decode(_read_bytes(p), str(p))
    lines = text.splitlines()
    if suffix in (".jsonl", ".ndjson"):
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise LintInputError(f"line {number}: not JSON: {exc.msg}") from None
            if not isinstance(row, dict) or column not in row:
                raise LintInputError(f"line {number}: no {column!r} field (use --column NAME)")
            value = row[column]
            found = (
                raw.find(json.dumps(value, ensure_ascii=False)[1:-1])
                if isinstance(value, str) and value
                else -1
            )
            yield number, max(found, 0), value
        return
    reader = csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        raise LintInputError("empty table") from None
    except csv.Error as exc:
        raise LintInputError(f"not a CSV table: {exc}") from None
    if column not in header:
        raise LintInputError(f"no column {column!r}; {_columns_hint(header)} (use --column NAME)")
    index = header.index(column)
    try:
        for row in reader:
            if not row:
                continue
            value = row[index] if index < len(row) else ""
            raw = lines[reader.line_num - 1] if reader.line_num - 1 < len(lines) else ""
            yield reader.line_num, max(raw.find(value) if value else 0, 0), value
    except csv.Error as exc:
        raise LintInputError(f"line {reader.line_num}: {exc}") from None


_COLUMN_NAME = re.compile(r"^[\w .()/-]{1,40}$")


def _columns_hint(names: list[str]) -> str:
    """The table's columns, quoted only when the first line looks like a header.

    A file that is not a table (a credentials file, say, reached through a symlink) would
    otherwise have its first line echoed: one field, or fields that are not names, are counted,
    never quoted.
    """
    if len(names) >= 2 and all(_COLUMN_NAME.match(str(n)) for n in names):
        return f"columns are {', '.join(map(str, names))}"
    return f"its first line has {len(names)} field(s), not a header of column names"


def _parquet_cells(p: Path, column: str) -> Iterator[tuple[int, int, object]]:
    try:
        check_regular_file(p, MAX_MARKER_FILE_BYTES, "table")
    except CascadecError as exc:
        raise LintInputError(exc.message) from None
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise LintInputError(f"cannot read parquet: {exc}") from None
    if column not in table.column_names:
        raise LintInputError(f"no column {column!r}; {_columns_hint(table.column_names)} (use --column NAME)")
    for number, value in enumerate(table.column(column).to_pylist(), start=1):
        yield number, 0, value


def _lint_table(
    p: Path, suffix: str, column: str, reg: ModelRegistry, result: LintResult
) -> Iterator[Diagnostic]:
    cells = [
        (line, offset, "" if value is None or (isinstance(value, float) and value != value) else str(value))
        for line, offset, value in table_cells(p, suffix, column)
    ]
    result.checked += len(cells)
    for _, diagnostics in lint_markers(cells, reg, str(p)):
        yield from diagnostics


def _lint_spec(p: Path, registry_arg, result: LintResult) -> Iterator[Diagnostic]:
    from cascadec.compiler import check_spec_file
    from cascadec.compiler.space import check_space, is_space_file

    if is_space_file(p):  # a search space: the base and every candidate (cascadec.compiler.space)
        found = check_space(p, registry=registry_arg)
        result.checked += found.candidates or 1
        result.notes.append(found.summary())
        yield from found.diagnostics
        return
    result.checked += 1
    yield from check_spec_file(p, registry=registry_arg)


def _lint_plan(p: Path, result: LintResult) -> Iterator[Diagnostic]:
    from cascadec.compiler import verify_plan
    from cascadec.plan import load_plan

    result.checked += 1
    try:
        yield from verify_plan(load_plan(p), str(p))
    except CascadecError as exc:
        if exc.diagnostics:
            yield from exc.diagnostics
        else:
            yield Diagnostic(code=exc.code, message=str(exc).split(f"{exc.code} ", 1)[-1], source=str(p))


def render_findings(result: LintResult, fmt: str = "text") -> tuple[str, str]:
    """(stdout, stderr) for a lint result."""
    if fmt == "json":
        out = json.dumps([d.to_json() for d in result.diagnostics], indent=2) + "\n"
    else:
        out = "".join(d.format() + "\n" for d in result.diagnostics)
    err = "".join(f"error: {e}\n" for e in result.io_errors)
    if fmt == "text":
        err += "".join(f"{note}\n" for note in result.notes)
        if result.diagnostics:
            err += f"Found {result.errors} error(s) and {result.warnings} warning(s) in {result.checked} strategies.\n"
        elif not result.io_errors:
            err += f"All checks passed ({result.checked} strategies).\n"
    return out, err
