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


def floats_cell(value: object, where: str, column: str, *, high: float) -> None:
    """A list of finite floats, each <= ``high`` (logprobs <= 0), at most MAX_TOKENS long; or null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise DataError(f"{column!r} must be a list of numbers or null, got {short(value)}", where=where)
    items = list(value)
    if len(items) > MAX_TOKENS:
        raise DataError(f"{column!r} has {len(items)} values; at most {MAX_TOKENS}", where=where)
    for x in items:
        if isinstance(x, bool | np.bool_) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
            raise DataError(f"{column!r} holds {short(x)}, not a finite number", where=where)
        if float(x) > high:
            raise DataError(f"{column!r} holds {short(x)}, above {high:g}", where=where)


def validate_bank(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The bank with typed columns (str ids, int64 indices and counts); DataError on any bad cell."""
    out = {}
    n = len(df)
    for column in ("model", "problem_id", "text"):
        values = df[column].tolist()
        limit = MAX_SAMPLE_CHARS if column == "text" else 1000
        out[column] = [
            text_cell(v, _row(source, i, df), column, limit=limit)
            if not is_missing(v)
            else _null(source, i, df, column)
            for i, v in enumerate(values)
        ]
    for column, high in (("sample_index", MAX_SAMPLE_INDEX), ("num_tokens", MAX_TOKENS)):
        out[column] = np.fromiter(
            (
                int_cell(v, _row(source, i, df), column, low=0, high=high)
                for i, v in enumerate(df[column].tolist())
            ),
            dtype="int64",
            count=n,
        )
    if "finish_reason" in df.columns:
        for i, v in enumerate(df["finish_reason"].tolist()):
            if not is_missing(v) and not isinstance(v, str):
                raise DataError(f"'finish_reason' must be text, got {short(v)}", where=_row(source, i, df))
    if "temperature" in df.columns:
        for i, v in enumerate(df["temperature"].tolist()):
            if is_missing(v):
                continue
            if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real) or not 0 <= float(v) <= 2:
                raise DataError(
                    f"'temperature' must be in [0, 2] or null, got {short(v)}", where=_row(source, i, df)
                )
    for column, low in (("score", -math.inf), ("cost", 0.0)):
        if column in df.columns:
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
    for column, high in (("logprobs", 0.0), ("entropies", math.inf), ("confidences", math.inf)):
        if column in df.columns:
            for i, v in enumerate(df[column].tolist()):
                floats_cell(v, _row(source, i, df), column, high=high)
    typed = df.copy()
    for column, values in out.items():
        typed[column] = values
    return typed


def _row(source: str, i: int, df: pd.DataFrame) -> str:
    return f"{source}: row {i}"


def _null(source: str, i: int, df: pd.DataFrame, column: str) -> str:
    raise DataError(f"{column!r} is empty", where=_row(source, i, df))
