"""A tier's vote and its signals over arrays: the runtime's ranking and measures, row by row.

One place for both evaluators (:mod:`.machine`, :mod:`.sweep`): the winner is the runtime's
cluster ranking (most votes; among ties the higher mean logprob when every voter has one;
then the earliest first member), and each signal is computed with the runtime's own order of
floating-point operations, so a threshold compares the very number a live run compares.
"""

from __future__ import annotations

import numpy as np

from cascadec.sim.tables import BIG


def vote(counts: np.ndarray, clsum: np.ndarray, first: np.ndarray, nolp: np.ndarray):
    """(winner class or -1, top, second, voters) of rows of per-class ``counts`` [R, K]."""
    top = counts.max(axis=1)
    second = np.sort(counts, axis=1)[:, -2] if counts.shape[1] > 1 else np.zeros_like(top)
    voters = counts.sum(axis=1)
    cand = (counts == top[:, None]) & (counts > 0)
    mean = clsum / np.where(counts > 0, counts, 1)
    key = np.where(cand, mean, -np.inf)
    best = key.max(axis=1)
    use_lp = (nolp == 0)[:, None]
    cand = np.where(use_lp, cand & (mean == best[:, None]), cand)
    win = np.where(cand, first, BIG).argmin(axis=1)
    return np.where(top > 0, win, -1), top, second, voters


def signals(
    k: np.ndarray,
    counts: np.ndarray,
    top: np.ndarray,
    second: np.ndarray,
    voters: np.ndarray,
    sums: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tokens: np.ndarray,
    logt: np.ndarray,
    scores: tuple[np.ndarray, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Every tier signal the arrays model (``core.signals.SIMULATED_SIGNALS``) for rows that drew
    ``k`` samples; ``sums`` = (logprob sum, logprob count, entropy sum, entropy count);
    ``scores`` = (score sum, count, max, the winner's score sum, its count) or None (no scores)."""
    lpsum, lpn, entsum, entn = sums
    denom = np.maximum(k, 1)
    ranked = -np.sort(-counts, axis=1)
    acc = np.zeros(k.shape[0])
    vcol = np.minimum(voters, logt.shape[1] - 1)
    for j in range(ranked.shape[1]):
        acc = acc + logt[ranked[:, j], vcol]
    with np.errstate(invalid="ignore", divide="ignore"):
        lp = np.where(lpn > 0, lpsum / lpn, np.nan)
        te = np.where(entn > 0, entsum / entn, np.nan)
    return {
        "agreement": top / denom,
        "margin": (top - second) / denom,
        "entropy": np.where(voters > 0, -acc, 0.0),
        "no_answer": (k - voters) / denom,
        "mean_logprob": lp,
        "token_entropy": te,
        "tokens": tokens.astype(np.float64),
        "k": k.astype(np.float64),
        **score_signals(k.shape[0], scores),
    }


def score_signals(rows: int, scores: tuple[np.ndarray, ...] | None) -> dict[str, np.ndarray]:
    """``score_mean``, ``score_max``, ``winner_score`` as the runtime computes them (NaN: none)."""
    if scores is None:
        nan = np.full(rows, np.nan)
        return {"score_mean": nan, "score_max": nan, "winner_score": nan}
    total, n, best, win_total, win_n = scores
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "score_mean": np.where(n > 0, total / np.maximum(n, 1), np.nan),
            "score_max": np.where(n > 0, best, np.nan),
            "winner_score": np.where(win_n > 0, win_total / np.maximum(win_n, 1), np.nan),
        }


def at_winner(per_class: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Rows of ``per_class`` [R, K] read at each row's winning class (0 where there is none)."""
    if per_class.shape[1] == 0:
        return np.zeros(win.shape[0], dtype=per_class.dtype)
    picked = np.take_along_axis(per_class, np.maximum(win, 0)[:, None], axis=1)[:, 0]
    return np.where(win >= 0, picked, 0)
