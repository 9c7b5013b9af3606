"""Validation of problem tables and sample banks: every cell typed and bounded before a run starts.

Tables come from many hands and many writers (pandas, pyarrow, Spark, hand-edited JSONL):
a float ``sample_index`` must not be truncated, a NaN or string token count must not reach
the cost sums, bytes ids and struct cells must not turn into their Python repr, a value that
would overflow when the results are written must be refused now — not after hours of
generation, and never after the run directory exists. Each problem is one ``DataError``
(E500) naming the file, the row and the column; values are shown short (never a 1 MB cell).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

from cascadec.errors import DataError
from cascadec.limits import MAX_K, MAX_PROBLEM_CHARS, MAX_SAMPLE_CHARS, MAX_TOKENS

MAX_SAMPLE_INDEX = MAX_K * 64  # rounds, retries and explorations continue the numbering


def short(value: object, width: int = 40) -> str:
    """A value for a message: its repr, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return value is pd.NA or value is pd.NaT


def text_cell(value: object, where: str, column: str, *, limit: int = MAX_PROBLEM_CHARS) -> str:
    """A text cell: a string (or a plain number written as text), never bytes or a structure."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, str | numbers.Number):
        kind = type(value).__name__
        raise DataError(f"{column!r} must be text, got {kind} {short(value)}", where=where)
    text = value if isinstance(value, str) else _number_text(value)
    if len(text) > limit:
        raise DataError(f"{column!r} is {len(text)} characters; at most {limit}", where=where)
    return text


def _number_text(value: numbers.Number) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def int_cell(value: object, where: str, column: str, *, low: int, high: int) -> int:
    """An integer cell in [low, high]: an int, or a float with an integral value (1.0, not 1.5)."""
    if isinstance(value, bool | np.bool_):
        raise DataError(f"{column!r} must be an integer, got {short(value)}", where=where)
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        number = int(value)
    else:
        raise DataError(f"{column!r} must be an integer, got {short(value)}", where=where)
    if not low <= number <= high:
        raise DataError(f"{column!r} must be in [{low}, {high}], got {short(number)}", where=where)
    return number


def floats_cell(
    value: object, where: str, column: str, *, high: float, nulls: bool = False, tokens: int | None = None
) -> None:
    """A list of finite floats, each <= ``high`` (logprobs <= 0), at most MAX_TOKENS long; or null.

    ``tokens``: the sample's token count: the list holds one value (a recorded mean) or at most
    one per token. ``nulls``: null entries allowed (a run's token records: an engine's -inf)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise DataError(f"{column!r} must be a list of numbers or null, got {short(value)}", where=where)
    items = list(value)
    if len(items) > MAX_TOKENS:
        raise DataError(f"{column!r} has {len(items)} values; at most {MAX_TOKENS}", where=where)
    if tokens is not None and len(items) > max(tokens, 1):
        raise DataError(
            f"{column!r} has {len(items)} values for a sample of {tokens} tokens "
            "(one value per token at most, or one: a mean)",
            where=where,
        )
    for x in items:
        if nulls and is_missing(x):
            continue
        if isinstance(x, bool | np.bool_) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
            raise DataError(f"{column!r} holds {short(x)}, not a finite number", where=where)
        if float(x) > high:
            raise DataError(f"{column!r} holds {short(x)}, above {high:g}", where=where)


def string_cell(value: object, where: str, column: str, *, limit: int) -> str:
    """A cell that must be a string (a generated text): never a number taken as its digits."""
    if not isinstance(value, str):
        raise DataError(f"{column!r} must be text, got {type(value).__name__} {short(value)}", where=where)
    if len(value) > limit:
        raise DataError(f"{column!r} is {len(value)} characters; at most {limit}", where=where)
    return value


def real_cell(
    value: object, where: str, column: str, *, low: float = -math.inf, high: float = math.inf
) -> None:
    """A finite number in [low, high], or null."""
    if is_missing(value):
        return
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or not low <= float(value) <= high
    ):
        bound = "a finite number" + (
            ""
            if (low, high) == (-math.inf, math.inf)
            else f" <= {high:g}"
            if low == -math.inf
            else f" >= {low:g}"
            if high == math.inf
            else f" in [{low:g}, {high:g}]"
        )
        raise DataError(f"{column!r} must be {bound} or null, got {short(value)}", where=where)


def validate_samples(df: pd.DataFrame, source: str) -> None:
    """A run's ``samples.parquet`` read as a bank: every cell the conversion reads is checked
    first (``bank_from_samples`` converts only what passed), so a null or non-numeric index, a
    string mean logprob or a scalar where a token list belongs is a located E500, never a crash
    or a silent truncation."""
    required = ("id", "model", "sample_index", "text", "num_tokens", "mean_logprob")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"run samples lack column(s) {', '.join(missing)}", where=source)
    for column in ("id", "model"):
        for i, v in enumerate(df[column].tolist()):
            if is_missing(v):
                _null(source, i, df, column)
            text_cell(v, _row(source, i, df), column, limit=1000)
    for i, v in enumerate(df["text"].tolist()):
        string_cell(v, _row(source, i, df), "text", limit=MAX_SAMPLE_CHARS)
    counts = []
    for column, high in (("sample_index", MAX_SAMPLE_INDEX), ("num_tokens", MAX_TOKENS)):
        got = [
            int_cell(v, _row(source, i, df), column, low=0, high=high)
            for i, v in enumerate(df[column].tolist())
        ]
        if column == "num_tokens":
            counts = got
    for column, low, high in (
        ("mean_logprob", -math.inf, 0.0),
        ("mean_entropy", 0.0, math.inf),
        ("temperature", 0.0, 2.0),
        ("score", -math.inf, math.inf),
        ("cost", 0.0, math.inf),
    ):
        if column in df.columns:
            for i, v in enumerate(df[column].tolist()):
                real_cell(v, _row(source, i, df), column, low=low, high=high)
    if "finish_reason" in df.columns:
        for i, v in enumerate(df["finish_reason"].tolist()):
            if not is_missing(v) and not isinstance(v, str):
                raise DataError(f"'finish_reason' must be text, got {short(v)}", where=_row(source, i, df))
    for column, high in (("token_logprobs", 0.0), ("token_confidence", math.inf)):
        if column in df.columns:
            for i, v in enumerate(df[column].tolist()):
                floats_cell(v, _row(source, i, df), column, high=high, nulls=True, tokens=counts[i])


def _all_strings(column: pd.Series, limit: int) -> bool:
    """Column-wise: every cell a str of at most ``limit`` characters (no null). False says only
    "check cell by cell", which finds and locates the first bad cell."""
    if pd.api.types.infer_dtype(column, skipna=False) != "string":
        return False
    return bool(column.empty or column.str.len().max() <= limit)


def _strings_or_null(column: pd.Series) -> bool:
    return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def _all_ints(column: pd.Series, low: int, high: int) -> bool:
    """Column-wise: an integer dtype (never bool) with every value in [low, high]."""
    if column.dtype.kind not in "iu":
        return False
    return bool(column.empty or (column.min() >= low and column.max() <= high))


def _reals_or_null(column: pd.Series, low: float, high: float, *, finite: bool = False) -> bool:
    """Column-wise: a float or integer dtype (never bool), each value null or in [low, high]."""
    if column.dtype.kind not in "iuf":
        return False
    values = column.to_numpy(dtype="float64")
    known = values[~np.isnan(values)]
    if finite and not np.isfinite(known).all():
        return False
    return bool(((known >= low) & (known <= high)).all())


def validate_bank(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The bank with typed columns (str ids, int64 indices and counts); DataError on any bad cell.

    Rows repeating a sample's key (model, problem, temperature, index) with the same content are
    one sample (kept once); with different content (text, tokens, finish, score, cost) the bank
    is ambiguous and refused, naming both rows — never first-wins."""
    out = {}
    n = len(df)
    for column in ("model", "problem_id", "text"):
        values = df[column].tolist()
        if _all_strings(df[column], MAX_SAMPLE_CHARS if column == "text" else 1000):
            out[column] = values  # the common case, checked column-wise: every cell a short enough str
            continue
        if column == "text":
            out[column] = [
                string_cell(v, _row(source, i, df), column, limit=MAX_SAMPLE_CHARS)
                if not is_missing(v)
                else _null(source, i, df, column)
                for i, v in enumerate(values)
            ]
            continue
        out[column] = [
            text_cell(v, _row(source, i, df), column, limit=1000)
            if not is_missing(v)
            else _null(source, i, df, column)
            for i, v in enumerate(values)
        ]
    for column, high in (("sample_index", MAX_SAMPLE_INDEX), ("num_tokens", MAX_TOKENS)):
        if _all_ints(df[column], 0, high):
            out[column] = df[column].to_numpy(dtype="int64")
            continue
        out[column] = np.fromiter(
            (
                int_cell(v, _row(source, i, df), column, low=0, high=high)
                for i, v in enumerate(df[column].tolist())
            ),
            dtype="int64",
            count=n,
        )
    if "finish_reason" in df.columns and not _strings_or_null(df["finish_reason"]):
        for i, v in enumerate(df["finish_reason"].tolist()):
            if not is_missing(v) and not isinstance(v, str):
                raise DataError(f"'finish_reason' must be text, got {short(v)}", where=_row(source, i, df))
    if "temperature" in df.columns and not _reals_or_null(df["temperature"], 0.0, 2.0):
        for i, v in enumerate(df["temperature"].tolist()):
            if is_missing(v):
                continue
            if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real) or not 0 <= float(v) <= 2:
                raise DataError(
                    f"'temperature' must be in [0, 2] or null, got {short(v)}", where=_row(source, i, df)
                )
    for column, low in (("score", -math.inf), ("cost", 0.0)):
        if column in df.columns and not _reals_or_null(df[column], low, math.inf, finite=True):
            for i, v in enumerate(df[column].tolist()):
                if is_missing(v):
                    continue
                if (
                    isinstance(v, bool | np.bool_)
                    or not isinstance(v, numbers.Real)
                    or not math.isfinite(float(v))
                    or float(v) < low
                ):
                    bound = "a finite number >= 0" if low == 0 else "a finite number"
                    raise DataError(
                        f"{column!r} must be {bound} or null, got {short(v)}", where=_row(source, i, df)
                    )
    counts = out["num_tokens"]
    for column, high in (("logprobs", 0.0), ("entropies", math.inf), ("confidences", math.inf)):
        if column in df.columns:
            for i, v in enumerate(df[column].tolist()):
                floats_cell(v, _row(source, i, df), column, high=high, tokens=int(counts[i]))
    typed = df.copy()
    for column, values in out.items():
        typed[column] = values
    return _without_duplicates(typed, source)


_KEY = ("model", "problem_id", "temperature", "sample_index")
_CONTENT = ("text", "num_tokens", "finish_reason", "score", "cost")


def _without_duplicates(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The bank with each sample once; DataError when two rows of one key disagree."""
    key = [c for c in _KEY if c in df.columns]
    frame = df[key].copy()
    if "temperature" in frame.columns:
        frame["temperature"] = pd.to_numeric(frame["temperature"], errors="coerce").fillna(-1.0)
    dup = frame.duplicated(keep=False).to_numpy()
    if not dup.any():
        return df
    content = [c for c in _CONTENT if c in df.columns]
    first: dict[tuple, tuple[int, tuple]] = {}
    keys = frame[dup].itertuples(index=False)
    cells = df.loc[dup, content].itertuples(index=False)
    for i, k, c in zip(np.flatnonzero(dup), keys, cells, strict=True):
        k, c = tuple(k), tuple(None if is_missing(v) else v for v in c)
        if k not in first:
            first[k] = (int(i), c)
            continue
        j, seen = first[k]
        if seen != c:
            diff = next(name for name, a, b in zip(content, seen, c, strict=True) if a != b)
            named = ", ".join(f"{n}={short(v, 24)}" for n, v in zip(key, k, strict=True))
            raise DataError(
                f"rows {j} and {i} are one sample ({named}) with different {diff!r}: "
                "a bank holds one sample per key; remove one of them",
                where=_row(source, int(i), df),
            )
    return df.loc[~frame.duplicated(keep="first").to_numpy()].reset_index(drop=True)


def _row(source: str, i: int, df: pd.DataFrame) -> str:
    return f"{source}: row {i}"


def _null(source: str, i: int, df: pd.DataFrame, column: str) -> str:
    raise DataError(f"{column!r} is empty", where=_row(source, i, df))
