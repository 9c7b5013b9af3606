"""Synthetic sample banks for tests and notebooks: a known ground truth, no model.

``synthetic_bank`` draws, per problem, a latent difficulty; each model answers right with a
probability that falls with difficulty (bigger models fall slower), wrong answers spread over
a few distractors, some samples carry no answer or are truncated, logprobs are lower when
wrong. Everything is seeded, so a test that fails can be replayed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascadec.runtime.testing import sample_text

SYNTHETIC_MODELS = {"S": 1.0, "M": 4.0, "L": 30.0}  # id → params (cost per token)
SKILL = {"S": 0.35, "M": 0.65, "L": 0.97}
SYNTHETIC_ALIASES = {"S": "0.1M", "M": "0.4M", "L": "3M"}  # what specs over a synthetic bank name


def synthetic_registry_yaml(ids: tuple[str, ...] = tuple(SYNTHETIC_MODELS)) -> str:
    """A model registry (YAML) of the synthetic models ``ids``, so specs can name them by alias."""
    rows = "".join(
        f"  - {{id: {i}, aliases: [{SYNTHETIC_ALIASES[i]}], params: {SYNTHETIC_MODELS[i]}}}\n" for i in ids
    )
    return "version: 1\nprompt: raw\nmodels:\n" + rows


def synthetic_problems(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    diff = rng.uniform(0, 1, size=n).round(4)
    return pd.DataFrame(
        {
            "id": [f"syn-{seed}-{i}" for i in range(n)],
            "problem": [f"problem {i}" for i in range(n)],
            "answer": [str(100 + i % 7) for i in range(n)],
            "difficulty": diff,
        }
    )


def synthetic_bank(
    problems: pd.DataFrame,
    *,
    k: int = 16,
    temperatures: tuple[float, ...] = (0.7, 1.0),
    seed: int = 0,
    models: dict[str, float] | None = None,
    skill: dict[str, float] | None = None,
    logprobs: bool = True,
    scores: bool = False,
    costs: bool = False,
) -> pd.DataFrame:
    """Bank rows for every model at every temperature (k samples) plus greedy (T=0, one sample).

    ``scores``: a ``score`` column (an external verifier: higher when right, now and then
    missing); ``costs``: a recorded ``cost`` for the largest model's samples (an API price),
    null for the others (priced per token). Both drawn from their own generator, so the rest
    of the bank is the same with or without them."""
    rng = np.random.default_rng(seed + 7919)
    extra = np.random.default_rng(seed + 104729)
    largest = max(models or SYNTHETIC_MODELS, key=(models or SYNTHETIC_MODELS).get)
    models = models or SYNTHETIC_MODELS
    skill = skill or SKILL
    rows = []
    for row in problems.itertuples(index=False):
        gold, d = str(row.answer), float(getattr(row, "difficulty", 0.5))
        for model in models:
            p_right = float(np.clip(1.0 - d * (1.0 - skill[model]) * 1.6, 0.02, 0.995))
            for temp in (0.0, *temperatures):
                n = 1 if temp == 0 else k
                for i in range(n):
                    u = rng.uniform()
                    if u < 0.04:
                        answer = None
                    elif u < 0.06:
                        answer = "~" + gold
                    elif rng.uniform() < p_right:
                        answer = gold
                    else:
                        answer = str(int(gold) + int(rng.integers(1, 4)))
                    right = answer == gold
                    text, finish = sample_text(answer)
                    tokens = int(rng.integers(8, 40))
                    lp = float(-abs(rng.normal(0.05 if right else 0.4, 0.1))) if logprobs else None
                    row_extra = {}
                    if scores:
                        s = float(np.round(extra.normal(0.8 if right else 0.3, 0.2), 3))
                        row_extra["score"] = None if extra.uniform() < 0.05 else s
                    if costs:
                        price = float(np.round(extra.uniform(20.0, 40.0), 2))
                        row_extra["cost"] = tokens * price if model == largest else None
                    rows.append(
                        {
                            **row_extra,
                            "model": model,
                            "problem_id": str(row.id),
                            "sample_index": i,
                            "text": text,
                            "num_tokens": tokens,
                            "finish_reason": finish,
                            "logprobs": None if lp is None or rng.uniform() < 0.03 else [lp],
                            "temperature": temp,
                        }
                    )
    return pd.DataFrame(rows)


SYNTHETIC_SPACE = """version: 1
name: s
models: reg.yaml
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 3M}
search:
  tiers:
    - {k: [2, 4], escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}, optional: true}
    - {}
"""  # a search space over the synthetic registry (``synthetic_registry_yaml``): 5 candidates


def write_synthetic_search(
    folder,
    problems: int,
    seed: int,
    *,
    space: str = SYNTHETIC_SPACE,
    models: tuple[str, ...] = tuple(SYNTHETIC_MODELS),
):
    """What calibrate, optimize and simulate read, in ``folder``: ``p.jsonl`` (problems),
    ``bank.parquet`` (k = 4 at T = 0.7, plus greedy), ``reg.yaml`` and ``space.yaml``."""
    from pathlib import Path

    from cascadec.runtime.backends.replay import write_bank

    folder = Path(folder)
    frame = synthetic_problems(problems, seed=seed)
    frame.to_json(folder / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(frame, k=4, temperatures=(0.7,), seed=seed), folder / "bank.parquet")
    (folder / "reg.yaml").write_text(synthetic_registry_yaml(models))
    (folder / "space.yaml").write_text(space)
    return folder
