"""A router trained on a synthetic bank (text and the difficulty column), for tests that route."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from cascadec.router.model import Router, save_router
from cascadec.runtime.data import problems_from_frame
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.sim.router_fit import fit_router
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems


@cache
def synthetic_router(n: int = 160, seed: int = 5) -> tuple[Router, Path]:
    """(router, its .npz path): heads greedy and votes of 2 and 4 at each temperature, per model;
    trained on problems of another draw than the property tests' (seed 5)."""
    frame = synthetic_problems(n, seed=seed)
    # text that says something: the difficulty's first digit, as a word (the router reads both)
    frame["problem"] = [
        f"problem {i} level {'abcdefghij'[int(d * 10) % 10]}" for i, d in enumerate(frame["difficulty"])
    ]
    bank = synthetic_bank(frame, k=4, seed=seed)
    plan = make_plan([strategy("any", [tier("S", 1, 0.0)])], SYNTHETIC_MODELS)
    problems = problems_from_frame(frame, feature_columns=["difficulty"])
    trained = fit_router(
        plan, bank, problems, equivalence=Equivalence("exact"), columns=["difficulty"], folds=3
    )
    path = Path(tempfile.mkdtemp(prefix="cascadec-router-")) / "synthetic.npz"
    return save_router(trained.router, path), path
