"""Train a router on a sample bank: the labels are the runtime's own verdicts.

Every head is a baseline route of the bank (:mod:`cascadec.sim.baselines`): a model answering
greedily (``@T0/k1``) or by a majority vote of its first k samples at a recorded temperature.
Each is simulated as a one-tier plan — the very decisions and grading a run makes — and its
per-problem correctness is that head's label. :func:`fit_router` then fits every head
(:func:`cascadec.router.train.train_router`), cross-fitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cascadec.plan import Plan
from cascadec.router.features import Vectoriser
from cascadec.router.model import Head
from cascadec.router.train import DEFAULT_C, Trained, train_router
from cascadec.runtime.data import Problem
from cascadec.runtime.equivalence import Equivalence
from cascadec.sim.baselines import compute_baselines


def head_labels(
    plan: Plan,
    bank: pd.DataFrame,
    problems: list[Problem],
    *,
    equivalence: Equivalence | None = None,
    ks: Sequence[int] | None = None,
) -> tuple[list[Head], np.ndarray]:
    """(heads, labels [problems × heads]: 1 right, 0 wrong, NaN ungraded) of every baseline route."""
    base = compute_baselines(plan, bank, problems, equivalence=equivalence, ks=ks)
    heads = [Head(r.model, r.temperature, r.k) for r in base.routes]
    return heads, np.asarray(base.correct, dtype=float).T.copy()


def fit_router(
    plan: Plan,
    bank: pd.DataFrame,
    problems: list[Problem],
    *,
    equivalence: Equivalence | None = None,
    columns: Sequence[str] = (),
    ks: Sequence[int] | None = None,
    folds: int = 5,
    C: float = DEFAULT_C,
    seed: int = 0,
    bits: int = 18,
    training: dict | None = None,
    labels: tuple[list[Head], np.ndarray] | None = None,
    jobs: int | None = None,
) -> Trained:
    """A router over the bank's models for ``problems`` (text, and the numeric ``columns`` of their
    features), with every problem's cross-fitted predictions."""
    heads, y = labels or head_labels(plan, bank, problems, equivalence=equivalence, ks=ks)
    numeric = {c: [p.features.get(c) for p in problems] for c in columns}
    return train_router(
        [p.problem for p in problems],
        [p.id for p in problems],
        y,
        heads,
        numeric=numeric,
        vectoriser=Vectoriser(bits=bits, numeric=tuple(columns)),
        folds=folds,
        C=C,
        seed=seed,
        training=training,
        jobs=jobs,
    )
