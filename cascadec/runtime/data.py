"""Problem tables: local JSONL / CSV / parquet files in the layouts people already have.

Recognised layouts (first match wins, per role):

- problem text: ``problem`` (MATH, ours), ``question`` (GSM8K), ``Problem`` (AIME), ``Question``;
- gold answer: ``answer`` (bare, or a GSM8K solution ending ``#### n``), ``Answer`` (AIME),
  ``solution`` (MATH: the last ``\\boxed{}``); optional — no gold, no ``correct`` column;
- id: ``id``, ``ID`` (AIME), ``unique_id``, ``problem_id``; else the row number (0-based);
- difficulty: whatever column the plan's adaptive-k policy names (``difficulty`` by default),
  numbers or ``Level 3`` style strings.

Shipped problem sets are read by name (``read_table("gsm8k")``; :mod:`cascadec.datasets`).

The runtime never sees the raw frame: it gets :class:`Problem` records, so the caller's frame
stays untouched. Every problem with the table is a :class:`DataError` (E500) that says where.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cascadec import datasets
from cascadec.core.policies import AdaptiveKPolicy
from cascadec.errors import CascadecError, DataError, InputFileError
from cascadec.limits import MAX_DATA_BYTES, check_regular_file
from cascadec.runtime.answers import gold_answer
from cascadec.runtime.validate import text_cell

PROBLEM_COLUMNS = ("problem", "question", "Problem", "Question")
GOLD_COLUMNS = ("answer", "Answer", "solution", "Solution")
ID_COLUMNS = ("id", "ID", "unique_id", "problem_id")
MAX_ID_CHARS = 1000
_LEVEL = re.compile(r"^\s*(?:level\s*)?([-+]?[0-9]+(?:\.[0-9]+)?)\s*$", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class Problem:
    id: str
    problem: str
    gold: str | None = None
    strategy: str | None = None  # the row's strategy cell (``--column``)
    features: dict[str, float | None] = field(default_factory=dict)  # difficulty columns


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a local JSONL/JSON/CSV/parquet file; ids and text stay strings.

    A ``path`` that is no file (missing, or a folder) but the name of a shipped problem set (``gsm8k``, ``math500``,
    ``aime24``, ``amc23``: :mod:`cascadec.datasets`) reads that set; one without an id column
    gets ``id`` = its 0-based row number as text (what the row-number rule gives the whole file).
    """
    p = Path(path)
    shipped = datasets.find(str(path)) if p.is_dir() or not p.exists() else None
    if shipped is not None:
        df = read_table(datasets.HERE / shipped.file)
        if shipped.id_column is None and "id" not in df.columns:
            df.insert(0, "id", [str(i) for i in range(len(df))])
        return df
    if not p.exists():
        bare = len(p.parts) == 1 and not p.suffix
        raise InputFileError(
            "no such data file"
            + (f", and not a shipped problem set{datasets.suggest(str(path))}" if bare else ""),
            where=p,
        )
    if p.is_dir():
        raise InputFileError("is a directory, expected a .jsonl, .csv or .parquet file", where=p)
    try:  # a FIFO or a device would block or never end
        check_regular_file(p, MAX_DATA_BYTES, "data file")
    except CascadecError as exc:
        raise InputFileError(exc.message, where=p) from None
    suffix = "".join(s for s in p.suffixes[-2:] if s != ".gz").lower() or p.suffix.lower()
    try:
        if suffix.endswith((".jsonl", ".ndjson")):
            df = pd.read_json(p, lines=True, dtype=False, encoding="utf-8-sig")  # a BOM, as CSV
        elif suffix.endswith(".json"):
            df = _read_json_any(p)
        elif suffix.endswith(".csv"):
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        elif suffix.endswith((".parquet", ".pq")):
            df = pd.read_parquet(p)
        else:
            raise DataError(f"unsupported data format {p.suffix!r}; use .jsonl, .csv or .parquet", where=p)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a corrupt file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read data: {msg}", where=p) from None
    if len(df) == 0:
        raise DataError("the data file has no rows", where=p)
    return df


def _read_json_any(p: Path) -> pd.DataFrame:
    text = p.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return pd.read_json(p, lines=True, dtype=False, encoding="utf-8-sig")
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError("a .json data file must hold a list of objects", where=p)
    return pd.DataFrame(data)


def _pick(columns: Iterable[str], candidates: tuple[str, ...]) -> str | None:
    cols = list(columns)
    return next((c for c in candidates if c in cols), None)


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _as_difficulty(value: object, where: str) -> float | None:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool | np.bool_):
        raise DataError(f"difficulty {value!r} is not a number", where=where)
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise DataError(f"difficulty {value!r} is not a finite number", where=where)
        return float(value)
    m = _LEVEL.match(str(value))
    if not m:
        raise DataError(f"difficulty {value!r} is not a number", where=where)
    return float(m.group(1))


def problems_from_frame(
    df: pd.DataFrame,
    *,
    strategy_column: str | None = None,
    feature_columns: Iterable[str] = (),
    required_columns: Iterable[str] = (),
    source: str = "<frame>",
) -> list[Problem]:
    """Validate ``df`` and turn its rows into :class:`Problem` records (``df`` is not modified).

    ``required_columns`` (:func:`routing_columns`: what an adaptive-k policy routes by): every
    row needs a number there — a missing column or an empty cell is an E500, never silently
    the first tier's k and start (which changes the routing)."""
    if len(df) == 0:
        raise DataError("no problems (the table is empty)", where=source)
    text_col = _pick(df.columns, PROBLEM_COLUMNS)
    if text_col is None:
        raise DataError(
            f"no problem column; expected one of {', '.join(PROBLEM_COLUMNS)} "
            f"(columns: {', '.join(map(str, df.columns))})",
            where=source,
        )
    gold_col = _pick(df.columns, GOLD_COLUMNS)
    id_col = _pick(df.columns, ID_COLUMNS)
    if strategy_column is not None and strategy_column not in df.columns:
        raise DataError(
            f"no strategy column {strategy_column!r} (columns: {', '.join(map(str, df.columns))})",
            where=source,
            code="E900",  # --column names a column the table lacks: a usage error, as in lint
        )
    required = list(dict.fromkeys(required_columns))
    absent = [c for c in required if c not in df.columns]
    if absent:
        raise DataError(
            f"no column {absent[0]!r}: the strategy's adaptive_k routes each problem by it "
            f"(columns: {', '.join(map(str, df.columns))})",
            where=source,
        )
    features = [c for c in dict.fromkeys([*feature_columns, *required]) if c in df.columns]
    if df.columns.has_duplicates:
        twice = next(str(c) for c in df.columns[df.columns.duplicated()])
        raise DataError(f"column {twice!r} appears twice", where=source)
    needed = [c for c in (id_col, text_col, gold_col, strategy_column, *features) if c is not None]
    cells = {c: df[c].tolist() for c in dict.fromkeys(needed)}  # column by column: no row Series
    out: list[Problem] = []
    seen: dict[str, int] = {}
    for pos in range(len(df)):
        row = {c: values[pos] for c, values in cells.items()}
        at = f"{source}: row {pos}"
        if id_col and not _missing(row[id_col]):
            rid = _as_id(text_cell(row[id_col], at, str(id_col), limit=MAX_ID_CHARS))
        else:
            rid = "" if id_col else str(pos)
        where = at + (f" (id {rid})" if rid else "")
        if not rid:
            raise DataError(f"empty {id_col!r}", where=where)
        text = row[text_col]
        if _missing(text) or not text_cell(text, where, str(text_col)).strip():
            raise DataError(f"empty {text_col!r}", where=where)
        if gold_col and not _missing(row[gold_col]):
            text_cell(row[gold_col], where, str(gold_col))
        strategy = None
        if strategy_column is not None:
            cell = row[strategy_column]
            if _missing(cell) or not text_cell(cell, where, strategy_column).strip():
                raise DataError(f"empty strategy cell in column {strategy_column!r}", where=where)
            strategy = str(cell).strip()
        # one problem may run several strategies (one row each), but each pair only once
        key = rid if strategy is None else f"{rid}\x00{strategy}"
        if key in seen:
            also = "" if strategy is None else f" with strategy {strategy!r}"
            raise DataError(f"duplicate id {rid!r}{also} (first at row {seen[key]})", where=where)
        seen[key] = pos
        values = {c: _as_difficulty(row[c], where) for c in features}
        for c in required:
            if values[c] is None:
                raise DataError(
                    f"no {c!r} value: the strategy's adaptive_k routes each problem by it "
                    "(fill the cell, or drop the problem)",
                    where=where,
                )
        out.append(
            Problem(
                id=rid,
                problem=text_cell(text, where, str(text_col)),
                gold=gold_answer(row[gold_col]) if gold_col else None,
                strategy=strategy,
                features=values,
            )
        )
    return out


def routing_columns(strategies: Iterable) -> list[str]:
    """The columns adaptive-k policies route by (every problem needs a value there)."""
    return sorted(
        {
            s.adaptive_k.column
            for s in strategies
            if s.adaptive_k and s.adaptive_k.policy != AdaptiveKPolicy.FIXED
        }
    )


def fingerprint(problems: Iterable[Problem]) -> str:
    """A hash of what a run's results depend on in the data (ids, texts, gold, strategies)."""
    h = hashlib.sha256()
    for p in problems:
        h.update(
            json.dumps(
                [p.id, p.problem, p.gold, p.strategy, sorted(p.features.items())], ensure_ascii=False
            ).encode()
        )
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
