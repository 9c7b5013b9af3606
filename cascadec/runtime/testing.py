"""Small builders for plans and sample banks, for tests and notebooks (no GPU, no compiler).

``bank_from_answers({("small", "p1"): ["4", "4", None, "5"]})`` writes one sample per answer:
a string becomes a text ending in ``\\boxed{answer}``, ``None`` a text with no answer, and a
string starting with ``~`` a truncated sample (``finish_reason="length"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from cascadec.plan import Exploration, Plan, PlanModel, PlanStrategy, PlanTier, RetryRule, seal


def plan_model(model_id: str, params: float) -> PlanModel:
    return PlanModel(id=model_id, path=f"/models/{model_id}", params=params)


def tier(
    model: str,
    k: int,
    temperature: float = 0.7,
    *,
    escalate_if: str | None = None,
    retry: RetryRule | None = None,
    explore: Exploration | None = None,
    cost: float = 1.0,
    max_tokens: int = 64,
    seed: int = 0,
    top_p: float = 0.8,
) -> PlanTier:
    return PlanTier(
        model=model,
        k=k,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        cost_per_token=cost,
        escalate_if=escalate_if,
        retry=retry,
        explore=explore,
    )


def strategy(key: str, tiers: Sequence[PlanTier], **kw) -> PlanStrategy:
    kind = kw.pop("kind", "cascade" if len(tiers) > 1 else ("mv" if tiers[0].k > 1 else "plain"))
    return PlanStrategy(key=key, kind=kind, tiers=tuple(tiers), prompt=kw.pop("prompt", "raw"), **kw)


def make_plan(strategies: Sequence[PlanStrategy], models: Mapping[str, float]) -> Plan:
    """A sealed plan; ``models`` maps model id → params (the cost order)."""
    return seal(
        Plan(
            models={m: plan_model(m, p) for m, p in models.items()},
            strategies=tuple(strategies),
            source="<test>",
        )
    )


def sample_text(answer: str | None) -> tuple[str, str]:
    """(text, finish_reason) for an answer spec (see the module docstring)."""
    if answer is None:
        return "I am not sure.", "stop"
    if answer.startswith("~"):
        return f"Let me compute: \\boxed{{{answer[1:]}}} and then more and more", "length"
    return f"We compute carefully. The answer is \\boxed{{{answer}}}.", "stop"


def bank_from_answers(
    answers: Mapping[tuple[str, str], Sequence[str | None]],
    logprob: float | None = -0.5,
    confidences: Mapping[tuple[str, str], Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Bank rows: sample i of (model, problem) answers ``answers[(model, problem)][i]``.

    ``confidences[(model, problem)][i]``: every token of sample i gets that token confidence
    (absent: the bank has no token confidences, as a backend without logprobs).
    """
    rows = []
    for (model, pid), seq in answers.items():
        conf = (confidences or {}).get((model, pid))
        for i, ans in enumerate(seq):
            text, finish = sample_text(ans)
            n_tok = 10 + i
            rows.append(
                {
                    "model": model,
                    "problem_id": str(pid),
                    "sample_index": i,
                    "text": text,
                    "num_tokens": n_tok,
                    "finish_reason": finish,
                    "logprobs": None if logprob is None else [logprob] * n_tok,
                    "confidences": None if conf is None else [float(conf[i])] * n_tok,
                }
            )
    return pd.DataFrame(rows)
