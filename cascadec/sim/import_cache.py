"""What ``bank import`` read and graded before: answers by text, verdicts by (gold, answer).

Importing the same outputs again — another registry, other prices, one file more — should not
read every completion again: extraction is most of an import's time. The cache is a pair of
parquet tables per version of the grader (:func:`grader_version`: the sha256 of the modules that
decide an answer and a verdict, and the versions of math-verify and of pandas, whose hashing
makes the keys), so a change to any of them starts afresh and nothing stale is ever served.

A key is 128 bits: two independent 64-bit hashes of the text (``pandas.util.hash_array`` with
two hash keys, computed over the whole column at once); a lookup is one hash join over the
first and a comparison of the second. A verdict left undecided (a timeout) is not kept. The
cache is an optimisation only: a folder that cannot be written, a damaged file, and the import
goes on without it; tables are replaced atomically, and keep the newest ``MAX_ENTRIES`` rows.

Where: ``$CASCADEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/cascadec``, else ``~/.cache/cascadec``;
``CASCADEC_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

GRADER_MODULES = (
    "cascadec/runtime/answers.py",
    "cascadec/runtime/normalize.py",
    "cascadec/runtime/equivalence.py",
    "cascadec/runtime/verify_worker.py",
    "cascadec/core/answer_format.py",
)
HASH_KEYS = ("cascadec-answer1", "cascadec-answer2")  # 16 characters each, as pandas asks
MAX_ENTRIES = 5_000_000


@functools.cache
def grader_version() -> str:
    """A digest of the code that extracts and grades answers (and of the libraries it rests on)."""
    from importlib import metadata

    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for rel in GRADER_MODULES:
        with contextlib.suppress(OSError):
            h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    for package in ("math-verify", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{package}={metadata.version(package)}".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path | None:
    where = os.environ.get("CASCADEC_CACHE_DIR")
    if where == "off":
        return None
    if where:
        return Path(where)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cascadec"


def keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit hashes of each text."""
    values = np.asarray(texts, dtype=object)
    return tuple(pd.util.hash_array(values, hash_key=k, categorize=False) for k in HASH_KEYS)  # type: ignore[return-value]


class Table:
    """One cached mapping (hash pair → value), read whole, extended, written back atomically."""

    def __init__(self, name: str) -> None:
        folder = cache_dir()
        self.path = None if folder is None else folder / f"{name}-{grader_version()}.parquet"
        self.frame = pd.DataFrame({"h1": np.array([], np.uint64), "h2": np.array([], np.uint64), "value": []})
        if self.path is not None and self.path.is_file():
            with contextlib.suppress(Exception):  # a damaged cache is an empty one
                frame = pd.read_parquet(self.path)
                if list(frame.columns) == ["h1", "h2", "value"]:
                    self.frame = frame
        self.added: list[pd.DataFrame] = []

    def get(self, h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, list]:
        """(found, values) for each key."""
        if len(self.frame) == 0 or len(h1) == 0:
            return np.zeros(len(h1), bool), [None] * len(h1)
        at = pd.Index(self.frame["h1"].to_numpy()).get_indexer(h1)
        found = at >= 0
        found[found] = self.frame["h2"].to_numpy()[at[found]] == h2[found]
        values = self.frame["value"].to_numpy(dtype=object)
        return found, [values[i] if ok else None for i, ok in zip(at, found, strict=True)]

    def put(self, h1: np.ndarray, h2: np.ndarray, values: Sequence) -> None:
        if len(h1):
            self.added.append(pd.DataFrame({"h1": h1, "h2": h2, "value": list(values)}))

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        frame = pd.concat([self.frame, *self.added], ignore_index=True)
        frame = frame.drop_duplicates("h1", keep="last").tail(MAX_ENTRIES)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
        except Exception:  # a cache that cannot be written is no cache, never a failed import
            with contextlib.suppress(OSError):
                tmp.unlink()
