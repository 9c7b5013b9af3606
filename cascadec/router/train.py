"""Train a router: per head a logistic regression on hashed features, cross-fitted.

``train_router(texts, ids, labels, heads)`` fits every head on the problems that have a label
(1: right, 0: wrong, NaN: ungraded). Problems are split into ``folds`` folds by a hash of
(seed, id) — a problem's fold never depends on the others — and each fold's predictions come
from the model fitted on the other folds: the *cross-fitted* predictions (``oof``) are the
only ones anything may choose on, since no model that produced them saw that problem. The
numeric columns' standardisation is fitted inside each fold too. The artifact holds the
models fitted on every problem, for problems none of them saw (held-out, new ones).

Learner: scikit-learn's ``LogisticRegression`` (L2, ``liblinear``) on a scipy sparse matrix,
imported here only (``pip install 'cascadec[router]'``); prediction never needs it
(:meth:`cascadec.router.model.Router.predict` is numpy). Why this learner: measured in
``benchmarks/bench_router.py`` and the README's "Learned routing".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cascadec.errors import CascadecError
from cascadec.router.features import Sparse, Vectoriser
from cascadec.router.model import Head, Router, RouterError

LEARNERS = ("liblinear", "lbfgs")
DEFAULT_C = 1.0


@dataclass
class Trained:
    router: Router
    oof: np.ndarray  # [problems × heads] cross-fitted P(right)
    folds: np.ndarray  # [problems] fold of each problem
    seconds: float


def fold_of(ids: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Each problem's fold: a hash of (seed, id)."""
    out = np.empty(len(ids), dtype=np.int64)
    for i, pid in enumerate(ids):
        digest = hashlib.blake2b(f"router|{seed}|{pid}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") % folds
    return out


def _sklearn():
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # pragma: no cover - the dev and router extras install it
        raise CascadecError(
            "training a router needs scikit-learn: pip install 'cascadec[router]' "
            "(prediction does not: a trained router runs on numpy alone)",
            code="E900",
        ) from None
    return LogisticRegression


def _fit(x, y: np.ndarray, C: float, learner: str) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) of one head; a constant label gives its smoothed base rate."""
    pos = float(y.sum())
    if pos == 0 or pos == y.size:
        rate = (pos + 0.5) / (y.size + 1.0)
        return np.zeros(x.shape[1]), float(np.log(rate / (1 - rate)))
    LogisticRegression = _sklearn()
    if learner == "liblinear":
        model = LogisticRegression(
            C=C, solver="liblinear", intercept_scaling=10.0, max_iter=200, random_state=0
        )
    else:
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=500)
    model.fit(x, y.astype(np.int64))
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def _fit_task(task) -> tuple[np.ndarray, float]:
    return _fit(*task)


def _run(tasks: list, jobs: int | None) -> list[tuple[np.ndarray, float]]:
    """Every fit, here (``jobs`` 1, the default) or on ``jobs`` worker processes. In this process
    the router's bytes (and hash) are the same on every run and machine; worker processes may
    differ from it in the last digits (about 1e-6), so parallel training is opt-in."""
    if jobs is None or jobs <= 1 or len(tasks) < 4:
        return [_fit(*t) for t in tasks]
    try:
        from joblib import Parallel, delayed
    except ImportError:  # pragma: no cover - scikit-learn depends on joblib
        return [_fit(*t) for t in tasks]
    return Parallel(n_jobs=jobs, backend="loky")(delayed(_fit_task)(t) for t in tasks)


def _design(hashed, numeric: Mapping[str, Sequence[float | None]], vec: Vectoriser, rows: np.ndarray):
    """The (compact) hashed block with the numeric columns standardised on ``rows`` (the fitting rows)."""
    if not vec.numeric:
        return hashed, vec
    from scipy.sparse import csr_matrix, hstack

    fitted = vec.fit_numeric({c: [numeric[c][i] for i in rows] for c in vec.numeric})
    extra = fitted._numeric(hashed.shape[0], numeric)
    block = csr_matrix(
        (extra[2], (extra[0], extra[1] - vec.n_hashed)), shape=(hashed.shape[0], len(vec.numeric))
    )
    return hstack([hashed, block], format="csr"), fitted


def train_router(
    texts: Sequence[str],
    ids: Sequence[str],
    labels: np.ndarray,
    heads: Sequence[Head],
    *,
    numeric: Mapping[str, Sequence[float | None]] | None = None,
    vectoriser: Vectoriser | None = None,
    folds: int = 5,
    C: float = DEFAULT_C,
    seed: int = 0,
    learner: str = "liblinear",
    training: dict | None = None,
    jobs: int | None = None,
) -> Trained:
    """Cross-fitted predictions and the router fitted on every problem (see the module docstring)."""
    t0 = time.perf_counter()
    n = len(texts)
    labels = np.asarray(labels, dtype=float)
    if labels.shape != (n, len(heads)):
        raise RouterError(f"labels are {labels.shape}, expected ({n}, {len(heads)})")
    if learner not in LEARNERS:
        raise RouterError(f"unknown learner {learner!r}; use one of {', '.join(LEARNERS)}")
    if not 2 <= folds <= 50:
        raise RouterError(f"folds must be in 2..50, got {folds}")
    numeric = dict(numeric or {})
    vec = vectoriser or Vectoriser()
    missing = [c for c in vec.numeric if c not in numeric]
    if missing:
        raise RouterError(f"numeric column(s) {', '.join(missing)} not in the data")
    text_only = Vectoriser(**{**vec.__dict__, "numeric": (), "numeric_mean": (), "numeric_std": ()})
    x_text: Sparse = text_only.transform(list(texts))
    # only the columns some problem has: a solver's cost grows with the columns it carries (2^18)
    present, compact = np.unique(x_text.cols, return_inverse=True)
    hashed = Sparse(n, present.size, x_text.rows, compact.astype(np.int64), x_text.vals).to_scipy()
    columns = np.concatenate([present, vec.n_hashed + np.arange(len(vec.numeric))]).astype(np.int64)
    fold = fold_of(ids, folds, seed)
    oof = np.full((n, len(heads)), np.nan)
    # one design per fold (numeric standardisation fitted on the fitting rows), shared by heads
    designs = []
    for f in range(folds):
        fit_rows = np.flatnonzero(fold != f)
        designs.append(_design(hashed, numeric, vec, fit_rows)[0])
    full, fitted_vec = _design(hashed, numeric, vec, np.arange(n))
    # every fit (head × fold, and head × all) is independent: run them on ``jobs`` processes
    tasks = []
    for j in range(len(heads)):
        y = labels[:, j]
        graded = ~np.isnan(y)
        for f in range(folds):
            train = np.flatnonzero(graded & (fold != f))
            if train.size and (fold == f).any():
                tasks.append(((j, f), train))
        rows = np.flatnonzero(graded)
        if rows.size:
            tasks.append(((j, None), rows))
    fitted = dict(
        zip(
            [key for key, _ in tasks],
            _run(
                [
                    (designs[f][rows] if f is not None else full[rows], labels[rows, j], C, learner)
                    for (j, f), rows in tasks
                ],
                jobs,
            ),
            strict=True,
        )
    )
    coefs, intercepts, out_heads = [], [], []
    for j, head in enumerate(heads):
        y = labels[:, j]
        graded = ~np.isnan(y)
        for f in range(folds):
            test = np.flatnonzero(fold == f)
            if test.size:
                w, b = fitted.get((j, f), (None, None))
                oof[test, j] = 0.5 if w is None else _sigmoid(designs[f][test] @ w + b)
        rows = np.flatnonzero(graded)
        w, b = fitted.get((j, None), (np.zeros(full.shape[1]), 0.0))
        coefs.append(w)
        intercepts.append(b)
        out_heads.append(
            Head(
                head.model,
                head.temperature,
                head.k,
                n=int(rows.size),
                positives=int(y[rows].sum()),
                metrics=reliability(oof[rows, j], y[rows]),
            )
        )
    coef = np.vstack(coefs)
    nonzero = np.flatnonzero(np.any(coef != 0, axis=0))
    used = columns[nonzero]  # ascending: hashed columns (np.unique sorts), then the numeric ones
    seconds = time.perf_counter() - t0
    info = {
        "problems": n,
        "folds": folds,
        "seed": seed,
        "learner": f"sklearn.linear_model.LogisticRegression(solver={learner}, C={C:g})",
        "C": C,
        **(training or {}),
    }
    router = Router(
        fitted_vec,
        tuple(out_heads),
        used,
        coef[:, nonzero],
        np.asarray(intercepts, dtype=np.float64),
        info,
    ).sealed()
    return Trained(router, oof, fold, seconds)


def _sigmoid(z) -> np.ndarray:
    z = np.asarray(z, dtype=float).ravel()
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


# --- how good the estimates are (cross-fitted) ---------------------------------------------
def auroc(p: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties counted half); None with one class only."""
    y = np.asarray(y) == 1
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.size)
    sp = p[order]
    # average ranks over ties
    _, first, counts = np.unique(sp, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict:
    """AUROC, ECE (equal-width bins), Brier score, log loss and the reliability bins."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    if not p.size:
        return {"auroc": None, "ece": None, "brier": None, "log_loss": None, "bins": []}
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        mp, acc = float(p[sel].mean()), float(y[sel].mean())
        ece += sel.sum() / p.size * abs(mp - acc)
        rows.append(
            {
                "lo": round(edges[b], 2),
                "hi": round(edges[b + 1], 2),
                "n": int(sel.sum()),
                "p": round(mp, 4),
                "right": round(acc, 4),
            }
        )
    eps = 1e-12
    a = auroc(p, y)
    return {
        "auroc": None if a is None else round(a, 4),
        "ece": round(float(ece), 4),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "log_loss": round(float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))), 4),
        "bins": rows,
    }
