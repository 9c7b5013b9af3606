"""The router artifact: per model (and k) a logistic regression on hashed problem features.

A router is a versioned, hashed ``.npz`` file read with ``allow_pickle=False`` — nothing in it
can run code. Its arrays:

- ``meta``: UTF-8 JSON (canonical: sorted keys) as uint8 — ``format`` (``cascadec-router``),
  ``version``, the vectoriser (:class:`~cascadec.router.features.Vectoriser`), the heads
  (name, model, temperature, k, training size, cross-fitted AUROC, ECE, Brier score and
  reliability bins) and how it was trained;
- ``features``: int64, the feature columns with a non-zero coefficient in some head (sorted);
- ``coef``: float64 [heads × features]; ``intercept``: float64 [heads];
- ``hash``: the ASCII content hash, ``sha256:`` of the four arrays above (meta bytes, then each
  array's little-endian bytes). Loading recomputes it: an edited or damaged file is refused,
  and a plan that names a router by hash gets exactly that router.

A head ``MODEL@T<temperature>/k<k>`` estimates P(the majority vote of the first k samples of
MODEL at that temperature is right | problem); ``@T0/k1`` is the greedy answer. Prediction is
numpy only: one gather of coefficients and one sum per row (:meth:`Router.predict`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from cascadec.errors import CascadecError
from cascadec.limits import read_regular_file
from cascadec.router.features import Sparse, Vectoriser

FORMAT = "cascadec-router"
VERSION = 1
MAX_ROUTER_BYTES = 256 * 1024 * 1024
MAX_HEADS = 4096


class RouterError(CascadecError):
    """A router artifact that is missing, unreadable, damaged, or does not fit the plan."""

    code = "E404"


def head_name(model: str, temperature: float, k: int) -> str:
    return f"{model}@T{temperature:g}/k{k}"


@dataclass(frozen=True)
class Head:
    """One estimate: P(right) of model ``model`` voting over ``k`` samples at ``temperature``."""

    model: str
    temperature: float
    k: int
    n: int = 0  # training problems (graded)
    positives: int = 0  # of which right
    metrics: dict = field(default_factory=dict)  # cross-fitted: auroc, ece, brier, bins

    @property
    def name(self) -> str:
        return head_name(self.model, self.temperature, self.k)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "temperature": self.temperature,
            "k": self.k,
            "n": self.n,
            "positives": self.positives,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Head:
        head = cls(
            model=str(d["model"]),
            temperature=float(d["temperature"]),
            k=int(d["k"]),
            n=int(d.get("n", 0)),
            positives=int(d.get("positives", 0)),
            metrics=dict(d.get("metrics", {})),
        )
        if d.get("name") not in (None, head.name) or head.k < 1 or not math.isfinite(head.temperature):
            raise ValueError(f"bad head {d.get('name')!r}")
        return head


@dataclass(frozen=True)
class Router:
    vectoriser: Vectoriser
    heads: tuple[Head, ...]
    features: np.ndarray  # int64 [F]
    coef: np.ndarray  # float64 [H, F]
    intercept: np.ndarray  # float64 [H]
    training: dict = field(default_factory=dict)
    hash: str = ""

    # --- lookup ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [h.name for h in self.heads]

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(h.model for h in self.heads))

    def head_for(self, model: str, temperature: float, k: int) -> str | None:
        """The head that estimates a tier of ``model`` at ``temperature`` voting over ``k``: the same
        (model, temperature, k); else the largest recorded k below it at that temperature (else
        the smallest above); else the model's greedy head; else any head of the model."""
        mine = [h for h in self.heads if h.model == model]
        if not mine:
            return None
        same_t = [h for h in mine if math.isclose(h.temperature, temperature, abs_tol=1e-6)]
        if same_t:
            below = [h for h in same_t if h.k <= k]
            pick = max(below, key=lambda h: h.k) if below else min(same_t, key=lambda h: h.k)
            return pick.name
        greedy = [h for h in mine if h.temperature == 0]
        return (greedy or mine)[0].name

    # --- predict --------------------------------------------------------------------------
    @property
    def _slots(self) -> np.ndarray:
        return _slot_table(self.hash or id(self), self.features, self.vectoriser.n_features)

    def scores(self, x: Sparse, heads: Sequence[str] | None = None) -> np.ndarray:
        """Logits [problems × heads] (all heads, or ``heads`` in that order)."""
        index = [self.names.index(h) for h in heads] if heads is not None else list(range(len(self.heads)))
        slot = self._slots[x.cols]
        w = np.concatenate([self.coef[index], np.zeros((len(index), 1))], axis=1)  # slot -1: weight 0
        out = np.empty((x.n_rows, len(index)))
        for j in range(len(index)):
            out[:, j] = np.bincount(x.rows, weights=w[j, slot] * x.vals, minlength=x.n_rows)
        return out + self.intercept[index][None, :]

    def predict(
        self,
        texts: Sequence[str],
        numeric: Mapping[str, Sequence[float | None]] | None = None,
        heads: Sequence[str] | None = None,
    ) -> np.ndarray:
        """P(right) [problems × heads] for problem texts (and the router's numeric columns)."""
        return sigmoid(self.scores(self.vectoriser.transform(texts, numeric), heads))

    # --- bytes ----------------------------------------------------------------------------
    def meta(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "vectoriser": self.vectoriser.to_dict(),
            "heads": [h.to_dict() for h in self.heads],
            "training": self.training,
        }

    def sealed(self) -> Router:
        meta = _meta_bytes(self.meta())
        return Router(
            self.vectoriser,
            self.heads,
            self.features,
            self.coef,
            self.intercept,
            self.training,
            content_hash(meta, self.features, self.coef, self.intercept),
        )


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


@lru_cache(maxsize=16)
def _slot_cached(key, features_bytes: bytes, n: int) -> np.ndarray:
    features = np.frombuffer(features_bytes, dtype=np.int64)
    slots = np.full(n, -1, dtype=np.int64)
    slots[features] = np.arange(features.size)
    return slots


def _slot_table(key, features: np.ndarray, n: int) -> np.ndarray:
    return _slot_cached(key, np.ascontiguousarray(features, dtype=np.int64).tobytes(), n)


def _meta_bytes(meta: dict) -> bytes:
    return json.dumps(meta, sort_keys=True, ensure_ascii=True, allow_nan=False).encode()


def content_hash(meta: bytes, features: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(len(meta).to_bytes(8, "little"))
    h.update(meta)
    for a, dtype in ((features, "<i8"), (coef, "<f8"), (intercept, "<f8")):
        arr = np.ascontiguousarray(a, dtype=dtype)
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return "sha256:" + h.hexdigest()


def save_router(router: Router, path: str | Path) -> Router:
    """Write the sealed router to ``path`` (atomically: a temp file renamed); returns it sealed."""
    router = router.sealed()
    meta = _meta_bytes(router.meta())
    buf = io.BytesIO()
    np.savez(
        buf,
        meta=np.frombuffer(meta, dtype=np.uint8),
        features=np.ascontiguousarray(router.features, dtype="<i8"),
        coef=np.ascontiguousarray(router.coef, dtype="<f8"),
        intercept=np.ascontiguousarray(router.intercept, dtype="<f8"),
        hash=np.frombuffer(router.hash.encode(), dtype=np.uint8),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return router


def load_router(path: str | Path, expected_hash: str | None = None) -> Router:
    """Read a router artifact (no pickle), check its content hash (and ``expected_hash``)."""
    try:
        data = read_regular_file(path, MAX_ROUTER_BYTES, "router")
    except CascadecError as exc:
        raise RouterError(exc.message, code=exc.code, where=exc.where or path) from None
    try:
        router = router_from_bytes(data)
    except RouterError as exc:
        raise RouterError(exc.message, where=path) from None
    if expected_hash is not None and router.hash != expected_hash:
        raise RouterError(
            f"the router's hash is {router.hash}, the plan expects {expected_hash}: "
            "it was retrained or replaced since the plan was compiled; recompile the spec",
            where=path,
        )
    return router


def router_from_bytes(data: bytes) -> Router:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {name: z[name] for name in ("meta", "features", "coef", "intercept", "hash")}
    except (ValueError, OSError, KeyError, EOFError) as exc:  # not an npz, a pickled array, a missing member
        raise RouterError(f"not a cascadec router (.npz without pickle): {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise RouterError(f"not a cascadec router: {type(exc).__name__}") from None
    try:
        meta_bytes = arrays["meta"].astype(np.uint8).tobytes()
        meta = json.loads(meta_bytes)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a cascadec router")
        if meta.get("version") != VERSION:
            raise ValueError(
                f"router version {meta.get('version')!r} is not supported (this cascadec reads {VERSION})"
            )
        vec = Vectoriser.from_dict(meta["vectoriser"])
        heads = tuple(Head.from_dict(h) for h in meta["heads"])
        if not heads or len(heads) > MAX_HEADS or len({h.name for h in heads}) != len(heads):
            raise ValueError("no heads, too many, or a repeated head")
        features = arrays["features"]
        coef, intercept = arrays["coef"], arrays["intercept"]
        if features.dtype.kind != "i" or coef.dtype.kind != "f" or intercept.dtype.kind != "f":
            raise ValueError("array types")
        if (
            features.ndim != 1
            or coef.shape != (len(heads), features.size)
            or intercept.shape != (len(heads),)
        ):
            raise ValueError("array shapes do not match the heads")
        if features.size and (
            features.min() < 0 or features.max() >= vec.n_features or np.any(np.diff(features) <= 0)
        ):
            raise ValueError("feature columns out of range or unsorted")
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise ValueError("coefficients are not finite")
        stored = arrays["hash"].astype(np.uint8).tobytes().decode("ascii")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RouterError(f"not a valid cascadec router: {exc}") from None
    computed = content_hash(meta_bytes, features, coef, intercept)
    if stored != computed:
        raise RouterError("the router's content does not match its hash (damaged or edited)")
    return Router(
        vec,
        heads,
        features.astype(np.int64),
        coef.astype(np.float64),
        intercept.astype(np.float64),
        dict(meta.get("training", {})),
        computed,
    )


_CACHE: dict[tuple[str, int, int, str | None], Router] = {}


def cached_router(path: str | Path, expected_hash: str | None = None) -> Router:
    """``load_router``, remembered per (path, mtime, size, hash) for this process."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return load_router(p, expected_hash)  # raises the located error
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, expected_hash)
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = load_router(p, expected_hash)
    return _CACHE[key]
