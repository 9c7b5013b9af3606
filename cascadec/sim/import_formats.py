"""Reading recorded outputs for ``cascadec bank import``: files, cells, and the open per-sample format.

Every adapter (this module's :func:`read_samples` and :mod:`cascadec.sim.import_adapters`)
turns one file into a :class:`Parsed` frame of *long rows*, one per sample, with the columns
of :data:`LONG` (and any ``score_<name>``): what the file says, typed, nothing decided yet.
:mod:`cascadec.sim.bank_import` maps ids to problems, numbers samples, estimates tokens,
prices and grades them.

Cells are checked here, each bad one a :class:`DataError` (E500) naming the file and row:
an id or model that is not text, a negative or non-integral token count, a temperature
outside [0, 2], a ``cost`` that is negative, infinite or NaN (a *missing* cost — JSON
``null``, an empty CSV cell, a parquet null — is allowed and means "price it from tokens").
"""

from __future__ import annotations

import gzip
import io
import json
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cascadec.errors import CascadecError, DataError, InputFileError
from cascadec.limits import MAX_DATA_BYTES, MAX_TOKENS, check_regular_file, read_regular_file
from cascadec.runtime.validate import short

STRINGS = ("id", "problem_text", "model", "text", "answer", "finish_reason", "source_answer")
NUMBERS = ("sample", "temperature", "prompt_tokens", "completion_tokens", "cost", "prompt_share")
LONG = ("file", "row", *STRINGS, *NUMBERS, "prompt_chars", "logprobs", "confidences", "source_correct")
VERDICT_KEYS = ("correct", "is_correct", "source_correct")
Where = Callable[[int], str]


@dataclass
class Parsed:
    """One file's samples as long rows, and what the reader noticed."""

    frame: pd.DataFrame
    fmt: str
    verdict: str | None = None  # where the file's own verdicts came from
    notes: list[str] = field(default_factory=list)


# --- files ---------------------------------------------------------------------------------
def file_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped for ``.gz``), at most MAX_DATA_BYTES either way."""
    try:
        raw = read_regular_file(path, MAX_DATA_BYTES, "outputs file")
    except CascadecError as exc:
        raise InputFileError(exc.message, where=path) from None
    if path.suffix.lower() != ".gz":
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            data = fh.read(MAX_DATA_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot gunzip: {exc}", where=path) from None
    if len(data) > MAX_DATA_BYTES:
        raise DataError(f"unpacks to more than {MAX_DATA_BYTES} bytes", where=path)
    return data


def kind(path: Path) -> str:
    """``jsonl``, ``json``, ``csv`` or ``parquet`` from the name (``.gz`` looked through)."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, what in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv")):
        if name.endswith(suffix):
            return what
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise DataError(
        "unsupported outputs file; use .jsonl, .json, .csv or .parquet (or .gz of one)", where=path
    )


def records(path: Path) -> list[dict]:
    """The objects of a JSONL file, or of a JSON file holding one object or a list of them."""
    text = file_bytes(path).decode("utf-8", errors="replace")
    if kind(path) == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # JSON Lines named .json
        if data is not None:
            data = data if isinstance(data, list) else [data]
            if not all(isinstance(r, dict) for r in data):
                raise DataError("a .json outputs file must hold an object or a list of objects", where=path)
            return data
    out = []
    for n, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"row {n}: not JSON ({str(exc)[:80]})", where=path) from None
        if not isinstance(obj, dict):
            raise DataError(f"row {n}: a JSON object expected, got {short(obj)}", where=path)
        out.append(obj)
    if not out:
        raise DataError("the outputs file has no rows", where=path)
    return out


def first_record(path: Path) -> dict | None:
    """The first object of a JSONL file (for detecting its format), or None."""
    try:
        check_regular_file(path, MAX_DATA_BYTES, "outputs file")
        with gzip.open(path) if path.suffix.lower() == ".gz" else open(path, "rb") as fh:
            head = fh.readline(MAX_DATA_BYTES)
    except CascadecError as exc:
        raise InputFileError(exc.message, where=path) from None
    except (OSError, EOFError):
        return None  # the full read says what is wrong with it
    try:
        obj = json.loads(head)
    except (json.JSONDecodeError, RecursionError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def jsonl_columns(path: Path) -> dict[str, list]:
    """A JSONL file of flat records as column lists: pyarrow's reader, else one line at a time
    (which also reads what pyarrow refuses: ``NaN``, a column of mixed types)."""
    import pyarrow.json as pj

    try:
        table = pj.read_json(io.BytesIO(file_bytes(path)), read_options=pj.ReadOptions(block_size=1 << 24))
    except Exception:  # pyarrow raises several types; the line reader says exactly where
        rows = records(path)
        names = list(dict.fromkeys(k for r in rows for k in r))
        return {name: [r.get(name) for r in rows] for name in names}
    return {name: table.column(name) for name in table.column_names}


def columns_of(path: Path) -> dict[str, list]:
    """A tabular file as column lists, missing cells None (never NaN: a NaN cell stays NaN)."""
    what = kind(path)
    if what == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises many types for a corrupt file
            raise DataError(f"cannot read parquet: {str(exc).splitlines()[0]}", where=path) from None
        return {name: table.column(name) for name in table.column_names}
    if what == "csv":
        try:
            df = pd.read_csv(io.BytesIO(file_bytes(path)), dtype=str, keep_default_na=False)
        except Exception as exc:
            raise DataError(f"cannot read CSV: {str(exc).splitlines()[0]}", where=path) from None
        return {str(c): [v if v != "" else None for v in df[c].tolist()] for c in df.columns}
    rows = records(path)
    names = list(dict.fromkeys(k for r in rows for k in r))
    return {name: [r.get(name) for r in rows] for name in names}


# --- cells ---------------------------------------------------------------------------------
def null(value: object) -> bool:
    return value is None or value is pd.NA


def pylist(values) -> Sequence:
    """A column as Python values (a pyarrow column converted)."""
    return values.to_pylist() if hasattr(values, "to_pylist") else values


def _arrow(values, test: str) -> bool:
    """Whether ``values`` is a pyarrow column of a type ``pyarrow.types.is_<test>`` accepts."""
    import pyarrow.types as pt

    return hasattr(values, "to_pylist") and getattr(pt, f"is_{test}")(values.type)


def strings(values, column: str, where: Where, *, limit: int | None = None) -> list[str | None]:
    """Text cells: strings, or plain numbers written as text (``17`` → ``"17"``); None stays None."""
    if _arrow(values, "string") or _arrow(values, "large_string"):
        import pyarrow.compute as pc

        if limit is None or len(values) == 0 or (pc.max(pc.utf8_length(values)).as_py() or 0) <= limit:
            return values.to_pylist()  # text already: nothing to check cell by cell
    values = pylist(values)
    out: list[str | None] = []
    for i, v in enumerate(values):
        if null(v) or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
            continue
        if isinstance(v, str):
            text = v
        elif isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
            text = str(int(v)) if float(v).is_integer() else str(v)
        else:
            raise DataError(f"{column!r} must be text, got {type(v).__name__} {short(v)}", where=where(i))
        if limit is not None and len(text) > limit:
            raise DataError(f"{column!r} is {len(text)} characters; at most {limit}", where=where(i))
        out.append(text)
    return out


def floats(
    values: Sequence,
    column: str,
    where: Where,
    *,
    integer: bool = False,
    low: float = -math.inf,
    high: float = math.inf,
    nan_is_null: bool = True,
) -> np.ndarray:
    """Number cells as float64, missing → NaN. Text is parsed (CSV). Out of range → DataError.

    ``nan_is_null=False`` (``cost``): a NaN cell is an error, only a missing one is allowed.
    """
    if _arrow(values, "integer") or _arrow(values, "floating"):  # typed already: checked as arrays
        import pyarrow as pa

        nulls = values.is_null().to_numpy(zero_copy_only=False)
        out = values.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        return _checked(out, nulls, values, column, where, integer, low, high, nan_is_null)
    values = pylist(values)
    try:  # the whole column at once; any doubt and the cell-by-cell pass below says where
        if any(type(v) is bool or isinstance(v, bytes | dict | list) for v in values):
            raise ValueError
        nulls = np.fromiter((v is None or v is pd.NA or v == "" for v in values), bool, len(values))
        out = np.array([np.nan if n else v for v, n in zip(values, nulls, strict=True)], dtype=float)
    except (ValueError, TypeError):
        return _floats_slow(values, column, where, integer, low, high, nan_is_null)
    return _checked(out, nulls, values, column, where, integer, low, high, nan_is_null)


def _checked(out, nulls, values, column, where, integer, low, high, nan_is_null) -> np.ndarray:
    """``out`` when every cell is in range, else the cell-by-cell pass's error."""
    ok = np.isnan(out) if nan_is_null else nulls.copy()
    known = ~np.isnan(out)
    ok |= known & (out >= low) & (out <= high) & (~np.isinf(out))
    if integer:
        ok &= ~known | (np.floor(np.where(known, out, 0)) == np.where(known, out, 0))
    if not ok.all():
        return _floats_slow(pylist(values), column, where, integer, low, high, nan_is_null)
    return out


def _floats_slow(values, column, where, integer, low, high, nan_is_null) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if null(v) or v == "":
            continue
        x = v
        if isinstance(v, str):
            try:
                x = float(v.strip())
            except ValueError:
                raise DataError(f"{column!r} must be a number, got {short(v)}", where=where(i)) from None
        if isinstance(x, bool | np.bool_) or not isinstance(x, numbers.Real):
            raise DataError(f"{column!r} must be a number, got {short(v)}", where=where(i))
        x = float(x)
        if math.isnan(x):
            if nan_is_null:
                continue
            raise DataError(f"{column!r} is NaN (leave the cell empty when it is unknown)", where=where(i))
        if not math.isfinite(x) or not low <= x <= high or (integer and not x.is_integer()):
            kind_ = "an integer" if integer else "a number"
            raise DataError(
                f"{column!r} must be {kind_} in [{low:g}, {high:g}], got {short(v)}", where=where(i)
            )
        out[i] = x
    return out


def verdicts(values, column: str, where: Where) -> list[bool | None]:
    """The file's own verdicts: booleans, 0/1, ``true``/``false`` text; missing → None."""
    if _arrow(values, "boolean"):
        return values.to_pylist()
    values = pylist(values)
    out: list[bool | None] = []
    for i, v in enumerate(values):
        if null(v) or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, bool | np.bool_):
            out.append(bool(v))
        elif isinstance(v, numbers.Real) and float(v) in (0.0, 1.0):
            out.append(float(v) == 1.0)
        elif isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0", "1.0", "0.0"):
            out.append(v.strip().lower() in ("true", "1", "1.0"))
        else:
            raise DataError(f"{column!r} must be true/false, got {short(v)}", where=where(i))
    return out


def float_lists(values, column: str, where: Where, *, high: float = math.inf) -> list:
    """Lists of finite numbers (or their JSON text, from CSV); missing → None."""
    values = pylist(values)
    out: list = []
    for i, v in enumerate(values):
        if null(v) or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
            continue
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                raise DataError(
                    f"{column!r} must be a list of numbers, got {short(v)}", where=where(i)
                ) from None
        if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
            v = [v]  # one number: a per-sample mean (``mean_logprob``), kept as a one-element list
        if isinstance(v, dict) or not hasattr(v, "__iter__"):
            raise DataError(f"{column!r} must be a list of numbers, got {short(v)}", where=where(i))
        items = list(v)
        if len(items) > MAX_TOKENS:
            raise DataError(f"{column!r} has {len(items)} values; at most {MAX_TOKENS}", where=where(i))
        for x in items:
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not -math.inf < float(x) <= high:
                raise DataError(
                    f"{column!r} holds {short(x)}, not a finite number <= {high:g}", where=where(i)
                )
        out.append([float(x) for x in items])
    return out


def long_frame(file: str, rows: Sequence[int], cells: dict[str, Sequence], where: Where) -> pd.DataFrame:
    """Long rows from column lists (absent columns null), every cell checked."""
    n = len(rows)
    frame: dict[str, object] = {"file": [file] * n, "row": np.asarray(rows, dtype=np.int64)}
    for name in STRINGS:
        limit = 1000 if name in ("id", "model") else None
        frame[name] = strings(cells[name], name, where, limit=limit) if name in cells else [None] * n

    def number(name: str, **bounds) -> np.ndarray:
        return floats(cells[name], name, where, **bounds) if name in cells else np.full(n, np.nan)

    frame["sample"] = number("sample", integer=True, low=0, high=2**31)
    frame["temperature"] = number("temperature", low=0, high=2)
    for name in ("prompt_tokens", "completion_tokens"):
        frame[name] = number(name, integer=True, low=0, high=MAX_TOKENS)
    frame["cost"] = number("cost", low=0, nan_is_null=False)
    frame["prompt_share"] = number("prompt_share", low=0, high=1) if "prompt_share" in cells else np.ones(n)
    frame["prompt_chars"] = number("prompt_chars", low=0)
    for name, high in (("logprobs", 0.0), ("confidences", math.inf)):
        frame[name] = float_lists(cells[name], name, where, high=high) if name in cells else [None] * n
    frame["source_correct"] = (
        verdicts(cells["source_correct"], "source_correct", where)
        if "source_correct" in cells
        else [None] * n
    )
    for name, values in cells.items():
        if name == "score" or name.startswith("score_"):
            frame[name] = floats(values, name, where)
    return pd.DataFrame(frame)


def row_where(path: Path, rows: Sequence[int]) -> Where:
    return lambda i: f"{path}: row {rows[i]}"


# --- the open per-sample format ------------------------------------------------------------
OPEN_COLUMNS = {  # file column -> long column
    "id": "id",
    "problem_id": "id",
    "model": "model",
    "sample": "sample",
    "sample_index": "sample",
    "text": "text",
    "answer": "answer",
    "temperature": "temperature",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "num_tokens": "completion_tokens",
    "cost": "cost",
    "logprobs": "logprobs",
    "mean_logprob": "logprobs",  # one number: the sample's mean logprob (a one-element list)
    "confidences": "confidences",
    "confidence": "score_confidence",  # one number per sample: a score like any other
    "finish_reason": "finish_reason",
    "problem": "problem_text",
    "question": "problem_text",
    "correct": "source_correct",
    "is_correct": "source_correct",
    "source_answer": "source_answer",
}


def read_samples(path: Path, cols: dict[str, list] | None = None) -> Parsed:
    """The open format: one row per sample (``id``, ``model``, ``text`` or ``answer``, ...)."""
    cols = columns_of(path) if cols is None else cols
    missing = [c for c in ("id", "model") if c not in cols and not (c == "id" and "problem_id" in cols)]
    if missing or not ({"text", "answer"} & set(cols)):
        need = missing + ([] if {"text", "answer"} & set(cols) else ["text or answer"])
        raise DataError(
            f"not the open per-sample format: no {', '.join(need)} column (columns: {', '.join(cols)})",
            where=path,
        )
    n = len(next(iter(cols.values())))
    rows = list(range(n))
    cells: dict[str, list] = {}
    ignored = []
    for name, values in cols.items():
        target = name if name == "score" or name.startswith("score_") else OPEN_COLUMNS.get(name)
        if target is not None and target not in cells:
            cells[target] = values
        else:
            ignored.append(name)
    frame = long_frame(str(path), rows, cells, row_where(path, rows))
    notes = [f"columns ignored: {', '.join(ignored)}"] if ignored else []
    verdict = next((c for c in ("correct", "is_correct") if c in cols), None)
    return Parsed(frame, "samples", verdict, notes)
