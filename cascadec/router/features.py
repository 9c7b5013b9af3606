"""Problem text (and numeric columns) → sparse feature rows, in numpy, no vocabulary.

The feature hashing trick (Weinberger et al., 2009), as scikit-learn's ``HashingVectorizer``
does it, but written over numpy arrays so a whole table is featurised at once and prediction
needs nothing but numpy. Every n-gram is hashed with a stable polynomial hash over its UTF-8
bytes (mod 2^64, base ``_BASE``), salted by its kind and length and mixed by the splitmix64
finaliser; its column is the top ``bits`` bits. Same text ⇒ same columns on every machine and
every Python (no ``hash()`` randomisation).

Kinds of n-gram (each its own salt, so two kinds never share a column by construction):

- ``char``: character n-grams of the lowercased text (``char_ngrams`` = (lo, hi) lengths);
- ``shape``: character n-grams of its *shape*, every digit written ``0`` (``4821+769=`` →
  ``0000+000=``): how many digits and operands, whatever the digits;
- ``word``: word n-grams over tokens (runs of letters, runs of digits, every other
  non-space character alone);
- numbers: per number its digit count, per text the count of numbers and the most digits,
  and the text's length (log2-bucketed).

A row's value for a column is the column's count divided by the square root of the row's
total count, so a row's score is one gather and one sum (no per-row aggregation at predict
time). Numeric data columns follow the hashed block: standardised by the training mean and
standard deviation, clipped to ±5, missing → 0 (the training mean): a routed spec needs no
column a problem lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_BASE = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so invertible mod 2^64
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT = {"char": 1, "shape": 2, "word": 3, "word2": 4, "numlen": 5, "numcount": 6, "maxlen": 7, "len": 8}
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_CLASS_SPACE, _CLASS_ALPHA, _CLASS_DIGIT, _CLASS_OTHER = 0, 1, 2, 3
_CLASS = np.full(256, _CLASS_OTHER, dtype=np.int8)
_CLASS[[ord(c) for c in " \t\n\r\x0b\x0c"]] = _CLASS_SPACE
_CLASS[ord("a") : ord("z") + 1] = _CLASS_ALPHA
_CLASS[128:] = _CLASS_ALPHA  # UTF-8 bytes of non-ASCII letters: part of words
_CLASS[ord("0") : ord("9") + 1] = _CLASS_DIGIT
_SHAPE = np.arange(256, dtype=np.uint8)
_SHAPE[ord("0") : ord("9") + 1] = ord("0")


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 arrays (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _salted(h: np.ndarray, kind: str, n: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(h + np.uint64(_SALT[kind] * 1_000_003 + n) * _GOLDEN)


@dataclass(frozen=True)
class Sparse:
    """Rows of hashed features: entry ``e`` is (row ``rows[e]``, column ``cols[e]``, ``vals[e]``);
    a column may repeat within a row (its values add up)."""

    n_rows: int
    n_cols: int
    rows: np.ndarray  # int64
    cols: np.ndarray  # int64
    vals: np.ndarray  # float64

    def to_scipy(self):
        """A scipy CSR matrix (training only; repeated entries are summed)."""
        from scipy.sparse import csr_matrix

        m = csr_matrix((self.vals, (self.rows, self.cols)), shape=(self.n_rows, self.n_cols))
        m.sum_duplicates()
        return m

    def take(self, index: np.ndarray) -> Sparse:
        """The rows ``index`` (in that order), renumbered 0..len-1."""
        pos = np.full(self.n_rows, -1, dtype=np.int64)
        pos[np.asarray(index, dtype=np.int64)] = np.arange(len(index))
        keep = pos[self.rows] >= 0
        return Sparse(len(index), self.n_cols, pos[self.rows[keep]], self.cols[keep], self.vals[keep])


@dataclass(frozen=True)
class Vectoriser:
    """How text and numeric columns become features (saved in the router artifact)."""

    bits: int = 18
    char_ngrams: tuple[int, int] = (1, 4)
    shape_ngrams: tuple[int, int] = (2, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    numbers: bool = True
    max_chars: int = 4000
    numeric: tuple[str, ...] = ()
    numeric_mean: tuple[float, ...] = field(default=())
    numeric_std: tuple[float, ...] = field(default=())

    @property
    def n_hashed(self) -> int:
        return 1 << self.bits

    @property
    def n_features(self) -> int:
        return self.n_hashed + len(self.numeric)

    def to_dict(self) -> dict:
        return {
            "bits": self.bits,
            "char_ngrams": list(self.char_ngrams),
            "shape_ngrams": list(self.shape_ngrams),
            "word_ngrams": list(self.word_ngrams),
            "numbers": self.numbers,
            "max_chars": self.max_chars,
            "numeric": list(self.numeric),
            "numeric_mean": list(self.numeric_mean),
            "numeric_std": list(self.numeric_std),
            "hash": "polynomial-uint64-splitmix64/v1",
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Vectoriser:
        if data.get("hash") != "polynomial-uint64-splitmix64/v1":
            raise ValueError(f"unknown feature hash {data.get('hash')!r}")
        bits = int(data["bits"])
        if not 4 <= bits <= 24:
            raise ValueError(f"bits {bits} outside 4..24")
        pairs = {}
        for name in ("char_ngrams", "shape_ngrams", "word_ngrams"):
            lo, hi = (int(x) for x in data[name])
            if not 0 <= lo <= hi <= 8:
                raise ValueError(f"{name} ({lo}, {hi}) outside 0..8")
            pairs[name] = (lo, hi)
        numeric = tuple(str(c) for c in data.get("numeric", ()))
        mean = tuple(float(x) for x in data.get("numeric_mean", ()))
        std = tuple(float(x) for x in data.get("numeric_std", ()))
        if not len(numeric) == len(mean) == len(std) or not all(math.isfinite(x) for x in (*mean, *std)):
            raise ValueError("numeric columns, means and deviations do not match")
        return cls(
            bits=bits,
            numbers=bool(data["numbers"]),
            max_chars=int(data["max_chars"]),
            numeric=numeric,
            numeric_mean=mean,
            numeric_std=std,
            **pairs,
        )

    def fit_numeric(self, numeric: Mapping[str, Sequence[float | None]]) -> Vectoriser:
        """The same vectoriser with the numeric columns' mean and deviation measured on ``numeric``."""
        mean, std = [], []
        for c in self.numeric:
            x = np.asarray([np.nan if v is None else float(v) for v in numeric.get(c, ())], dtype=float)
            x = x[np.isfinite(x)]
            m = float(x.mean()) if x.size else 0.0
            s = float(x.std()) if x.size else 1.0
            mean.append(m)
            std.append(s if s > 1e-12 else 1.0)
        return Vectoriser(**{**self.__dict__, "numeric_mean": tuple(mean), "numeric_std": tuple(std)})

    # --- featurise ------------------------------------------------------------------------
    def transform(
        self, texts: Sequence[str], numeric: Mapping[str, Sequence[float | None]] | None = None
    ) -> Sparse:
        n = len(texts)
        rows, cols = self._hashed(texts)
        total = np.bincount(rows, minlength=n).astype(float)
        vals = 1.0 / np.sqrt(np.maximum(total, 1.0))[rows]
        if self.numeric:
            num_rows, num_cols, num_vals = self._numeric(n, numeric or {})
            rows = np.concatenate([rows, num_rows])
            cols = np.concatenate([cols, num_cols])
            vals = np.concatenate([vals, num_vals])
        return Sparse(n, self.n_features, rows, cols, vals)

    def _numeric(self, n: int, numeric: Mapping[str, Sequence[float | None]]):
        rows, cols, vals = [], [], []
        for j, c in enumerate(self.numeric):
            column = numeric.get(c)
            if column is None:
                continue
            x = np.asarray([np.nan if v is None else float(v) for v in column], dtype=float)
            if x.shape != (n,):
                raise ValueError(f"numeric column {c!r} has {x.size} values for {n} problems")
            z = np.clip((x - self.numeric_mean[j]) / self.numeric_std[j], -5.0, 5.0)
            ok = np.flatnonzero(np.isfinite(z) & (z != 0))
            rows.append(ok)
            cols.append(np.full(ok.size, self.n_hashed + j, dtype=np.int64))
            vals.append(z[ok])
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def _hashed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every hashed n-gram occurrence."""
        n = len(texts)
        encoded = [(" " + t[: self.max_chars].lower() + " ").encode("utf-8", "replace") for t in texts]
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n)
        buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
        shift = np.uint64(64 - self.bits)
        out_rows: list[np.ndarray] = []
        out_cols: list[np.ndarray] = []

        def emit(r: np.ndarray, h: np.ndarray, kind: str, k: int) -> None:
            out_rows.append(r)
            out_cols.append((_salted(h, kind, k) >> shift).astype(np.int64))

        L = buf.size
        inv_pow, powers = _powers(L)
        pre = _prefix(buf.astype(np.uint64) + np.uint64(1), inv_pow)
        spre = _prefix(_SHAPE[buf].astype(np.uint64) + np.uint64(1), inv_pow)
        remaining = np.repeat(starts[1:], lengths) - np.arange(L, dtype=np.int64)  # bytes left in its text
        for kind, (lo, hi), table in (("char", self.char_ngrams, pre), ("shape", self.shape_ngrams, spre)):
            for k in range(max(lo, 1), hi + 1) if hi else ():
                if L < k:
                    continue
                ok = remaining[: L - k + 1] >= k  # the window stays inside one text
                with np.errstate(over="ignore"):
                    h = powers[k - 1 : L] * (table[k : L + 1] - table[: L - k + 1])
                emit(doc[: L - k + 1][ok], h[ok], kind, k)
        cls = _CLASS[buf]
        # tokens: runs of letters, runs of digits, single other characters
        newtok = np.ones(L, dtype=bool)
        if L > 1:
            newtok[1:] = (cls[1:] != cls[:-1]) | (cls[1:] == _CLASS_OTHER)
        tok_start = np.flatnonzero(newtok & (cls != _CLASS_SPACE))
        tok_end = np.empty_like(tok_start)
        if tok_start.size:
            run_end = np.flatnonzero(np.append(newtok[1:], True))  # last byte of each run
            idx = np.searchsorted(run_end, tok_start)
            tok_end = run_end[idx] + 1
        tok_doc = doc[tok_start] if tok_start.size else np.zeros(0, np.int64)
        tok_hash = _span(pre, powers, tok_start, tok_end)
        wlo, whi = self.word_ngrams
        if wlo <= 1 <= whi and tok_start.size:
            emit(tok_doc, tok_hash, "word", 1)
        for k in range(max(wlo, 2), whi + 1):
            if tok_start.size < k:
                continue
            m = tok_start.size - k + 1
            same = tok_doc[:m] == tok_doc[k - 1 :]
            h = tok_hash[:m].copy()
            for j in range(1, k):
                h = _mix(h * _BASE + tok_hash[j : j + m])
            emit(tok_doc[:m][same], h[same], "word2", k)
        if self.numbers:
            digit_tok = cls[tok_start] == _CLASS_DIGIT if tok_start.size else np.zeros(0, bool)
            nd = (tok_end - tok_start)[digit_tok]
            dd = tok_doc[digit_tok]
            emit(dd, nd.astype(np.uint64), "numlen", 0)
            count = np.bincount(dd, minlength=n)
            emit(np.arange(n), np.minimum(count, 32).astype(np.uint64), "numcount", 0)
            most = np.zeros(n, dtype=np.int64)
            np.maximum.at(most, dd, nd)
            emit(np.arange(n), most.astype(np.uint64), "maxlen", 0)
            emit(np.arange(n), np.log2(np.maximum(lengths, 1)).astype(np.uint64), "len", 0)
        rows = np.concatenate(out_rows) if out_rows else np.zeros(0, np.int64)
        cols = np.concatenate(out_cols) if out_cols else np.zeros(0, np.int64)
        return rows, cols


def _powers(L: int) -> tuple[np.ndarray, np.ndarray]:
    """(B^-i, B^i) for i in 0..L, mod 2^64 (numpy wraps uint64 arithmetic)."""
    inv = np.uint64(pow(int(_BASE), -1, 1 << 64))
    inv_pow = np.ones(L + 1, dtype=np.uint64)
    powers = np.ones(L + 1, dtype=np.uint64)
    if L:
        with np.errstate(over="ignore"):
            inv_pow[1:] = np.cumprod(np.full(L, inv, dtype=np.uint64), dtype=np.uint64)
            powers[1:] = np.cumprod(np.full(L, _BASE, dtype=np.uint64), dtype=np.uint64)
    return inv_pow, powers


def _prefix(values: np.ndarray, inv_pow: np.ndarray) -> np.ndarray:
    """S[i] = sum_{j<i} values[j] * B^-j mod 2^64."""
    s = np.zeros(values.size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(values * inv_pow[: values.size], dtype=np.uint64, out=s[1:])
    return s


def _span(s: np.ndarray, powers: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Polynomial hash of bytes [a, b): sum_j values[j] * B^(b-1-j) = B^(b-1) * (S[b] - S[a])."""
    if not a.size:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return powers[b - 1] * (s[b] - s[a])
