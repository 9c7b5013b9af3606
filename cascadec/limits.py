"""Every bound on what cascadec reads, in one place (the README's "Guarantees" lists them).

Inputs come from many hands: a bound turns a hostile or mistaken input (a 10 MB marker, a
5000-digit k, a document nested 10,000 deep, a FIFO given as a file) into one clear, located
error instead of a hang, an unbounded allocation or an internal error. Lint and compile read
the same constants, so what lint accepts compile accepts.

:func:`read_regular_file` is how every input file is read: only regular files (a FIFO or a
device would block or never end), at most ``limit`` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal, get_args

from cascadec.errors import CascadecError
from cascadec.outputs import atomic_write, file_lock, refuse_link_or_owned

__all__ = ["atomic_write", "check_output_file", "read_regular_file", "write_output"]

MAX_K = 1024  # samples per tier (and per retry or exploration)
MAX_TIERS = 16  # tiers per strategy
MAX_STRATEGIES = 10_000  # strategies per plan (distinct markers of a table)
MAX_TOKENS = 1_000_000  # max_tokens of a tier; num_tokens of a recorded sample
MAX_RETRIES = 16
MAX_MARKER_CHARS = 1_000  # one marker (the longest seed marker has 48 characters)
MAX_NUMBER_DIGITS = 12  # digits of one number in a marker (k, temperature, size)
MAX_DEPTH = 64  # nesting of YAML specs, registries, JSON plans
MAX_SPEC_BYTES = 1 << 20  # a YAML spec or a model registry
MAX_PLAN_BYTES = 16 << 20  # a JSON plan
MAX_MARKER_FILE_BYTES = 64 << 20  # a marker file or table given to lint
MAX_DATA_BYTES = 4 << 30  # a problem table or a sample bank
MAX_PROBLEM_CHARS = 1_000_000  # one problem's text
MAX_SAMPLE_CHARS = 10_000_000  # one recorded sample's text
MAX_CANDIDATES = 1_000_000  # a search space's max_candidates (default 20,000), counted before filling
MAX_PLACEHOLDERS = 8  # distinct {name} placeholders of one condition template
MAX_NAME_CHARS = 1_000  # a strategy's key or name (a spec name, a canonical marker, a figure's label)
MAX_PROBLEMS = 10_000_000  # problems of one input (a simulation's per-problem lists)
MAX_REPORT_STRATEGIES = 64  # strategies one report draws and compares (all inputs together)
MAX_TENSOR_PARALLEL = 64  # tensor_parallel_size of a model (registry and plan)
MIN_MODEL_LEN, MAX_MODEL_LEN = 16, 1 << 24  # max_model_len of a model, in tokens (registry and plan)
Dtype = Literal["auto", "half", "float16", "bfloat16", "float", "float32"]  # what vLLM loads weights as
DTYPES = get_args(Dtype)
MAX_DRY_RUN_ROWS = 100_000  # rows `run --dry-run` checks and routes (more: E900, use --limit)


def read_regular_file(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; CascadecError E901 (I/O, exit 2) otherwise.

    The type is checked on the open descriptor (``O_NONBLOCK``, so opening a FIFO never waits
    for a writer), never on the name: nothing can swap the file in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CascadecError(f"cannot read {what}: {exc.strerror or exc}", code="E901", where=path) from None
    try:
        _require_regular(os.fstat(fd), path, limit, what)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise CascadecError(f"{what} grew past {limit} bytes while read", code="E901", where=path)
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_regular_file(path: str | Path, limit: int, what: str = "file") -> None:
    """The same checks without reading (for files a library opens itself: parquet, CSV)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CascadecError(f"cannot read {what}: {exc.strerror or exc}", code="E901", where=path) from None
    _require_regular(info, path, limit, what)


def _require_regular(info: os.stat_result, path: str | Path, limit: int, what: str) -> None:
    """A regular file (never a directory, pipe, socket or device) within ``limit`` bytes."""
    if stat.S_ISDIR(info.st_mode):
        raise CascadecError(f"is a directory, not a {what}", code="E901", where=path)
    if not stat.S_ISREG(info.st_mode):
        raise CascadecError(
            f"not a regular file (a pipe, socket or device); give the {what} as a file on disk",
            code="E901",
            where=path,
        )
    if info.st_size > limit:
        raise CascadecError(
            f"{what} is {info.st_size} bytes; at most {limit} are read", code="E901", where=path
        )


def check_output_file(
    output: str | Path,
    inputs: tuple[str | Path | None, ...] = (),
    *,
    replaceable: tuple[str, ...] = (),
    prefix: str | None = None,
) -> None:
    """Refuse an output file that would destroy something: one of the command's own inputs, a
    special file, or an existing file that is not an earlier output of the same kind (a JSON
    object with one of the ``replaceable`` keys, such as a plan's ``schema_version``, or a text
    that starts with ``prefix``). Never a symlink (dangling or not: it could point anywhere),
    never a path inside a folder cascadec owns (a run, a bank, a report: E502)."""
    out = Path(output)
    refuse_link_or_owned(out)
    if not out.exists():
        return
    for item in inputs:
        if item is not None and Path(item).exists() and os.path.samefile(item, out):
            raise CascadecError("the output would replace this command's own input", code="E901", where=out)
    if not out.is_file():
        raise CascadecError("output exists and is not a regular file", code="E901", where=out)
    if prefix is not None:
        try:
            with open(out, "rb") as fh:
                if fh.read(len(prefix.encode())) == prefix.encode():
                    return
        except OSError:
            pass
    try:
        import json

        head = json.loads(read_regular_file(out, MAX_PLAN_BYTES, "output").decode("utf-8"))
    except (CascadecError, ValueError, RecursionError):
        head = None
    if not (isinstance(head, dict) and any(key in head for key in replaceable)):
        raise CascadecError(
            "output file exists and was not written by cascadec; choose another path or remove it",
            code="E901",
            where=out,
        )


def write_output(
    output: str | Path,
    text: str,
    inputs: tuple[str | Path | None, ...] = (),
    *,
    replaceable: tuple[str, ...] = (),
    prefix: str | None = None,
    overwrite: bool = True,
) -> None:
    """Write a command's output file: checked by :func:`check_output_file`, then atomically.

    Check and write happen under :func:`cascadec.outputs.file_lock`: of two commands writing
    one path at once, the second waits, then sees the first one's file (and, without
    ``overwrite``, refuses it: E502) — never both "wrote".
    """
    with file_lock(output):
        if not overwrite and os.path.lexists(output):
            raise CascadecError(
                "exists (written meanwhile?); pass --overwrite to replace it", code="E502", where=output
            )
        check_output_file(output, inputs, replaceable=replaceable, prefix=prefix)
        try:
            atomic_write(output, text.encode("utf-8"))
        except OSError as exc:
            raise CascadecError(f"cannot write: {exc.strerror or exc}", code="E901", where=output) from None
