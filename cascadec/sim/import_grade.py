"""Grading recorded samples once per distinct text and per distinct (gold, answer) pair.

``cascadec bank import`` re-reads every sample's answer with cascadec's own extraction
(:func:`cascadec.runtime.answers.extract_answer`, the format a plan would read it with) and
grades it with the run's grader (:class:`cascadec.runtime.equivalence.Equivalence`) against
the problem's gold, as the simulator does (``cascadec.sim.arrays``): only a finished sample
(``finish_reason`` ``stop``) has an answer. Real banks repeat themselves — the same completion
from several temperatures or files, the same answer to a problem from many samples — so each
distinct text is read once and each distinct (gold, answer) pair graded once, the pairs that
need math-verify all in one parallel batch.

Also the per-model summary that ``bank import`` prints and ``bank info`` shows.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import multiprocessing as mp
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cascadec.core.answer_format import AnswerFormat
from cascadec.runtime.answers import MAX_ANSWER_CHARS, extract_answer, normalize, raw_answer
from cascadec.runtime.data import Problem
from cascadec.runtime.equivalence import Equivalence

MAX_LISTED = 1000  # disagreements kept in import.json
PARALLEL_FROM = 20_000  # distinct texts from which extraction is shared out among processes
_TEXTS: list[str] = []  # what forked workers read (inherited, never pickled)


@functools.lru_cache(maxsize=1 << 16)
def _normalize(raw: str) -> str:
    return normalize(raw)


def read_one(text: str | None, fmt: AnswerFormat) -> str | None:
    """``extract_answer(text, fmt)``, with the normalisation of each raw answer done once.

    Models repeat their answers far more than their texts (a few hundred distinct raw answers
    among tens of thousands of completions), and normalising is half of the work.
    ``tests/unit/test_bank_import.py`` checks it equals ``extract_answer`` on real banks.
    """
    if fmt is AnswerFormat.CHOICE or not text:
        return extract_answer(text, fmt)
    raw = raw_answer(text, fmt)
    if raw is None or len(raw) > MAX_ANSWER_CHARS:
        return None
    return _normalize(raw) or None


def extract_all(texts: Sequence[str], fmt: AnswerFormat) -> list[str | None]:
    """:func:`read_one` of each text, in order (in forked worker processes for many texts)."""
    fmt = AnswerFormat(fmt)
    workers = min(os.cpu_count() or 1, 8)
    if len(texts) < PARALLEL_FROM or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [read_one(t, fmt) for t in texts]
    from concurrent.futures import ProcessPoolExecutor

    global _TEXTS
    _TEXTS = list(texts)
    size = math.ceil(len(texts) / workers)
    spans = [(i, min(i + size, len(texts)), fmt) for i in range(0, len(texts), size)]
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return [a for part in pool.map(_extract_span, spans) for a in part]
    finally:
        _TEXTS = []


def _extract_span(span: tuple[int, int, AnswerFormat]) -> list[str | None]:
    start, end, fmt = span
    return [read_one(t, fmt) for t in _TEXTS[start:end]]


def grade(
    texts: Sequence[str],
    finished: np.ndarray,
    problem_ids: Sequence[str],
    problems: dict[str, Problem],
    fmt: AnswerFormat = AnswerFormat.BOXED_OR_FINAL_LINE,
    equivalence: Equivalence | None = None,
    cache: bool = True,
) -> tuple[list[str | None], list[bool | None]]:
    """(answer, correct) of every sample: correct None where the problem has no gold or the
    grader could not decide. ``cache``: reuse (and keep) what earlier imports read and graded
    (:mod:`cascadec.sim.import_cache`)."""
    from cascadec.sim.import_cache import Table, keys

    fmt = AnswerFormat(fmt)
    eq = equivalence or Equivalence("math")
    codes, distinct = pd.factorize(pd.Series(texts, dtype=object), use_na_sentinel=False)
    distinct = [t if isinstance(t, str) else "" for t in distinct]
    store = Table(f"answers-{fmt.value}") if cache else None
    h1, h2 = keys(distinct) if store else (np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    found, read = store.get(h1, h2) if store else (np.zeros(len(distinct), bool), [None] * len(distinct))
    todo = np.flatnonzero(~found)
    fresh = extract_all([distinct[i] for i in todo], fmt)
    for i, a in zip(todo, fresh, strict=True):
        read[i] = a
    if store:
        store.put(h1[todo], h2[todo], fresh)
        store.save()
    # a cached "no answer" reads back from parquet as NaN, never an answer
    answers = [
        read[c] if ok and isinstance(read[c], str) else None for c, ok in zip(codes, finished, strict=True)
    ]
    gold = {pid: p.gold for pid, p in problems.items()}
    pairs = sorted(
        {(gold[p], a) for p, a in zip(problem_ids, answers, strict=True) if a is not None and gold[p]}
    )
    verdicts = Table(f"verdicts-{eq.mode}") if cache else None
    p1, p2 = keys([f"{g}\0{a}" for g, a in pairs]) if verdicts else (None, None)
    known, cached = verdicts.get(p1, p2) if verdicts else (np.zeros(len(pairs), bool), [])
    missing = [pair for pair, ok in zip(pairs, known, strict=True) if not ok]
    eq.prepare(missing)
    verdict = {pair: bool(v) for pair, ok, v in zip(pairs, known, cached, strict=False) if ok}
    verdict |= {pair: eq.grade(*pair) for pair in missing}
    if verdicts:
        keep = [
            i
            for i, (pair, ok) in enumerate(zip(pairs, known, strict=True))
            if not ok and verdict[pair] is not None
        ]
        verdicts.put(p1[keep], p2[keep], [verdict[pairs[i]] for i in keep])
        verdicts.save()
    correct: list[bool | None] = []
    for pid, a in zip(problem_ids, answers, strict=True):
        g = gold[pid]
        correct.append(None if g is None else (False if a is None else verdict[(g, a)]))
    return answers, correct


def model_summary(bank: pd.DataFrame, correct: Sequence[bool | None] | None = None) -> list[dict]:
    """Per model: samples, problems, accuracy (share of graded samples right), the file's own
    verdicts' agreement, estimated token share, and the recorded or priced cost."""
    frame = bank.assign(_correct=list(correct) if correct is not None else bank.get("correct"))
    rows = []
    for model, part in frame.groupby(frame["model"].astype(str), sort=True):
        ours = part["_correct"] if "_correct" in part and part["_correct"].notna().any() else None
        row: dict = {"model": model, "samples": len(part), "problems": int(part["problem_id"].nunique())}
        if ours is not None:
            graded = ours.dropna().astype(bool)
            row["graded"] = len(graded)
            row["accuracy"] = float(graded.mean()) if len(graded) else None
        if "source_correct" in part and part["source_correct"].notna().any() and ours is not None:
            both = part[part["source_correct"].notna() & ours.notna()]
            same = both["source_correct"].astype(bool) == both["_correct"].astype(bool)
            row["source_verdicts"] = len(both)
            row["agreement"] = float(same.mean()) if len(both) else None
        if "tokens_estimated" in part:
            row["tokens_estimated"] = float(part["tokens_estimated"].fillna(False).astype(bool).mean())
        row["tokens"] = int(part["num_tokens"].sum())
        if "cost" in part and part["cost"].notna().any():
            row["cost"] = float(part["cost"].astype(float).sum())
        rows.append(row)
    return rows


def import_report(frame, bank, parsed, problems, files, data, registry, matched, notes, primary, fmt) -> dict:
    """``import.json``: what was read, matched and estimated; per model; the file's verdicts against ours."""
    rows = model_summary(bank)
    unit = "USD" if registry.priced else "params x tokens"
    for row in rows:
        entry = registry.get(row["model"])
        if "cost" not in row and entry is not None and entry.params is not None:
            row["cost"] = row["tokens"] * entry.params
        row["cost_unit"] = unit
    both = frame["source_correct"].notna() & frame["correct"].notna()
    differ = both & (frame["source_correct"] != frame["correct"])
    listed = [
        {
            "id": r.problem_id,
            "model": r.bank_model,
            "sample": int(r.sample_index),
            "source": bool(r.source_correct),
            "ours": bool(r.correct),
            "answer": r.answer,
            "source_answer": r.source_answer,
            "gold": problems[r.problem_id].gold,
            "file": r.file,
            "row": int(r.row),
        }
        for r in frame[differ].head(MAX_LISTED).itertuples(index=False)
    ]
    return {
        "cascadec_bank_import": 1,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [
            {
                "path": str(f),
                "format": p.fmt,
                "samples": len(p.frame),
                "verdicts": p.verdict,
                "notes": p.notes,
            }
            for f, p in zip(files, parsed, strict=True)
        ],
        "data": str(data),
        "problems": len(problems),
        "problems_covered": int(bank["problem_id"].nunique()),
        "matched": matched,
        "registry": str(registry.source),
        "cost_unit": unit,
        "samples": len(bank),
        "answer_format": str(fmt),
        "score": primary,
        "estimation": {
            "rule": None,
            "completion_tokens_estimated": float(frame["tokens_estimated"].mean()),
            "prompt_tokens_estimated": float(frame["prompt_tokens_estimated"].mean()),
        },
        "models": rows,
        "source_agreement": {
            "verdicts": int(both.sum()),
            "agreement": float(1 - differ.sum() / both.sum()) if both.any() else None,
            "disagreements": int(differ.sum()),
        },
        "disagreements": listed,
        "notes": notes,
    }
