"""What a bank cannot replay faithfully: a token budget other than the one it was recorded at.

Replay serves a bank's samples as they were recorded. A sample cut at the recording's
``max_tokens`` (``finish_reason: length``) is served cut, even to a tier that asks for more
tokens — the bank cannot say what the model would have written next — and a sample longer than
a tier's ``max_tokens`` is served whole, although that tier would have cut it. Either way the
simulated accuracy and cost are those of the recording's budget, not the plan's: worth a
warning (``simulate`` prints them), never a silent difference.
"""

from __future__ import annotations

import pandas as pd

from cascadec.plan import Plan


def token_budget_warnings(plan: Plan, bank: pd.DataFrame) -> list[str]:
    """One line per (tier model, max_tokens) the bank was recorded at a different budget for."""
    if bank.empty or "num_tokens" not in bank.columns:
        return []
    finish = bank["finish_reason"].fillna("stop") if "finish_reason" in bank.columns else None
    seen: set[tuple[str, int]] = set()
    out = []
    for s in plan.strategies:
        for i, t in enumerate(s.tiers):
            if (t.model, t.max_tokens) in seen:
                continue
            seen.add((t.model, t.max_tokens))
            names = {t.model}
            entry = plan.models.get(t.model)
            if entry is not None and entry.path:
                names.add(entry.path)
            rows = bank["model"].astype(str).isin(names)
            if not rows.any():
                continue
            tokens = bank.loc[rows, "num_tokens"]
            label = f"{s.key} tier {i} ({t.alias or t.model})"
            cut = tokens[finish[rows] == "length"] if finish is not None else tokens.iloc[:0]
            if len(cut) and t.max_tokens > int(cut.max()):
                share = len(cut) / len(tokens)
                out.append(
                    f"{label} asks max_tokens {t.max_tokens}, but the bank's samples of it were "
                    f"recorded at {int(cut.max())} ({share:.1%} cut there): replay serves them cut, so "
                    f"the simulated accuracy and cost are those of {int(cut.max())} tokens, not "
                    f"{t.max_tokens} (record a bank at --max-tokens {t.max_tokens})"
                )
            longer = int((tokens > t.max_tokens).sum())
            if longer:
                out.append(
                    f"{label} asks max_tokens {t.max_tokens}, but {longer} of the bank's "
                    f"{len(tokens)} samples of it are longer (up to {int(tokens.max())} tokens): replay "
                    f"serves them whole, where the tier would have cut them at {t.max_tokens}"
                )
    return out


ANSWER_CHECK_ROWS = 2000  # samples per (model, answer format) looked at: enough to see a mismatch
LOST_ANSWERS = 0.2  # share of samples whose answer a format loses that is worth a warning


def answer_format_warnings(plan: Plan, bank: pd.DataFrame) -> list[str]:
    """One line per (strategy format, model) that reads no answer from many samples ``bank import``
    read one from: a spec reading an imported GSM8K bank as ``boxed`` (the raw prompt's format)
    finds no answer in "The answer is 18" and scores 0%, silently, unless told."""
    from cascadec.runtime.answers import extract_answer

    if "answer" not in bank.columns or bank.empty:
        return []
    answered = bank[bank["answer"].notna()]
    out, seen = [], set()
    for s in plan.strategies:
        for t in s.tiers:
            key = (t.model, str(s.answer))
            if key in seen:
                continue
            seen.add(key)
            texts = answered.loc[answered["model"].astype(str) == t.model, "text"].head(ANSWER_CHECK_ROWS)
            if texts.empty:
                continue
            lost = sum(extract_answer(str(x), s.answer) is None for x in texts)
            if lost / len(texts) >= LOST_ANSWERS:
                out.append(
                    f"{s.key} reads answers as {s.answer} (defaults.answer), which finds none in "
                    f"{lost / len(texts):.0%} of the samples of {t.alias or t.model} that bank import read "
                    "an answer from: set defaults.answer to the format the bank's import.json names"
                )
    return out
