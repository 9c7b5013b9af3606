"""A bank as dense arrays: the vectorised simulator's view of recorded samples.

Per *stream* (model, temperature) and problem, sample ``i`` is stored exactly as the runtime
would record it (answer extraction, truncation, per-sample mean logprob and entropy are
computed by the runtime's own functions). Answers are mapped to per-problem *classes* under
the run's equivalence; a problem whose answers do not form a clean equivalence relation
(asymmetric or non-transitive ``same``, or a class whose members disagree about the gold) is
marked ``exact_only`` and the simulator sends it through the runtime's job state machine
instead, so the numbers stay exact either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from cascadec.errors import DataError
from cascadec.plan import Plan
from cascadec.runtime.answers import extract_answer
from cascadec.runtime.backends.replay import sample_from_row
from cascadec.runtime.data import Problem
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.signals import sample_mean_entropy, sample_mean_logprob

NO_CLASS = -1
BIG = np.iinfo(np.int64).max // 4  # "never" for indices and sample counts


def _temp_key(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 6)


@dataclass
class BankArrays:
    problems: list[Problem]
    streams: dict[tuple[str, float, str], int]  # (model id, temperature, answer format) -> stream index
    n: int  # samples stored per (stream, problem) (padded)
    avail: np.ndarray  # [S, P] samples the bank really has
    cls: np.ndarray  # [S, P, N] answer class, NO_CLASS when the sample does not vote
    lp: np.ndarray  # [S, P, N] per-sample mean logprob (NaN: none)
    ent: np.ndarray  # [S, P, N] per-sample mean entropy (NaN: none)
    tok: np.ndarray  # [S, P, N] generated tokens
    cost: np.ndarray  # [S, P, N] recorded cost (NaN: tokens x the model's cost per token)
    score: np.ndarray | None  # [S, P, N] external score (NaN: none); None: the bank has no scores
    n_classes: int
    correct: np.ndarray  # [P, C] the class's representative is right
    graded: np.ndarray  # [P] the problem has a gold answer
    exact_only: np.ndarray  # [P] equivalence is not a clean partition here

    def stream(self, model: str, temperature: float, answer_format) -> int:
        key = (model, round(float(temperature), 6), str(answer_format))
        if key not in self.streams:
            have = ", ".join(sorted({f"{m}@T{t:g}" for m, t, _ in self.streams}))
            raise DataError(
                f"the sample bank has no samples of {model!r} at temperature {temperature:g} "
                f"(it has {have}); record them with cascadec bank build"
            )
        return self.streams[key]

    @cached_property
    def prefix(self) -> Prefix:
        """The running sums every simulation of these arrays reads (computed once)."""
        return prefixes(self)


@dataclass
class Prefix:
    """Prefix sums over each stream's samples, index b = the first b samples (cumsum is sequential)."""

    votes: np.ndarray  # [S, P, N+1, K] votes per class
    class_logprob: np.ndarray  # [S, P, N+1, K] sum of members' mean logprobs per class
    first: np.ndarray  # [S, P, K] first index of each class (BIG: never)
    no_logprob: np.ndarray  # [S, P, N+1] voting samples without a logprob
    logprob_sum: np.ndarray  # [S, P, N+1] sum of the samples' mean logprobs (those that have one)
    logprob_count: np.ndarray  # [S, P, N+1] samples with a mean logprob
    entropy_sum: np.ndarray  # [S, P, N+1] sum of the samples' mean token entropies
    entropy_count: np.ndarray  # [S, P, N+1] samples with a mean token entropy
    tokens: np.ndarray  # [S, P, N+1] generated tokens
    priced_tokens: np.ndarray  # [S, P, N+1] tokens of samples priced per token (no recorded cost)
    recorded_cost: np.ndarray  # [S, P, N+1] sum of recorded costs
    scores: ScorePrefix | None


@dataclass
class ScorePrefix:
    """Prefix sums of the external scores (only for a bank that has them)."""

    sum: np.ndarray  # [S, P, N+1]
    count: np.ndarray  # [S, P, N+1] samples with a score
    max: np.ndarray  # [S, P, N+1] highest score so far (NaN: none yet)
    class_sum: np.ndarray  # [S, P, N+1, K] score sums per class
    class_count: np.ndarray  # [S, P, N+1, K] samples with a score per class


def prefixes(A: BankArrays) -> Prefix:
    """Prefix sums of every stream (use ``BankArrays.prefix``: computed once per arrays)."""
    S, P, N = A.cls.shape
    K = A.n_classes

    def cum(x):
        out = np.zeros((*x.shape[:2], N + 1, *x.shape[3:]), dtype=x.dtype)
        out[:, :, 1:] = np.cumsum(x, axis=2)
        return out

    onehot = A.cls[..., None] == np.arange(K)
    lp_known, ent_known = ~np.isnan(A.lp), ~np.isnan(A.ent)
    first = np.where(onehot.any(axis=2), onehot.argmax(axis=2), BIG)
    priced = np.isnan(A.cost)
    scores = None
    if A.score is not None:
        known = ~np.isnan(A.score)
        running = np.full((S, P, N + 1), np.nan)
        running[:, :, 1:] = np.fmax.accumulate(A.score, axis=2)
        scores = ScorePrefix(
            sum=cum(np.where(known, A.score, 0.0)),
            count=cum(known.astype(np.int64)),
            max=running,
            class_sum=cum(np.where(onehot & known[..., None], A.score[..., None], 0.0)),
            class_count=cum((onehot & known[..., None]).astype(np.int64)),
        )
    return Prefix(
        votes=cum(onehot.astype(np.int64)),
        class_logprob=cum(np.where(onehot, A.lp[..., None], 0.0)),
        first=first,
        no_logprob=cum(((A.cls >= 0) & ~lp_known).astype(np.int64)),
        logprob_sum=cum(np.where(lp_known, A.lp, 0.0)),
        logprob_count=cum(lp_known.astype(np.int64)),
        entropy_sum=cum(np.where(ent_known, A.ent, 0.0)),
        entropy_count=cum(ent_known.astype(np.int64)),
        tokens=cum(A.tok),
        priced_tokens=cum(np.where(priced, A.tok, 0)),
        recorded_cost=cum(np.where(priced, 0.0, A.cost)),
        scores=scores,
    )


def log_terms(size: int) -> np.ndarray:
    """``T[c, n] = (c/n)·ln(c/n)`` computed with ``math.log``, exactly as the runtime's entropy."""
    table = np.zeros((size + 1, size + 1))
    for total in range(1, size + 1):
        for c in range(1, total + 1):
            table[c, total] = (c / total) * math.log(c / total)
    return table


def needed_streams(plan: Plan) -> set[tuple[str, float, str]]:
    """Every (model, temperature, answer format) a plan may ask for."""
    out = set()
    for s in plan.strategies:
        fmt = str(s.answer)
        for t in s.tiers:
            out.add((t.model, round(t.temperature, 6), fmt))
            if t.retry is not None and t.retry.temperature is not None:
                out.add((t.model, round(t.retry.temperature, 6), fmt))
            if t.explore is not None and t.explore.temperature is not None:
                out.add((t.model, round(t.explore.temperature, 6), fmt))
    return out


def build_arrays(
    bank: pd.DataFrame, problems: list[Problem], plan: Plan, equivalence: Equivalence
) -> BankArrays:
    """Dense arrays of every stream the plan needs, for ``problems`` (in their order)."""
    pindex = {p.id: i for i, p in enumerate(problems)}
    wanted = needed_streams(plan)
    frame = bank[bank["problem_id"].astype(str).isin(pindex)]
    has_t = "temperature" in frame.columns
    rows: dict[tuple[str, float, str], list] = {key: [] for key in sorted(wanted)}
    formats = {str(s.answer): s.answer for s in plan.strategies}
    by_path = {m.path: m.id for m in plan.models.values()}
    for r in frame.itertuples(index=False):
        model = str(r.model)
        model = model if model in plan.models else by_path.get(model, model)
        temp = _temp_key(getattr(r, "temperature", None)) if has_t else None
        for key in rows:
            if key[0] == model and (temp is None or abs(temp - key[1]) < 1e-6):
                rows[key].append(r)
    streams = {key: i for i, key in enumerate(rows)}
    n = 1
    for rs in rows.values():
        for r in rs:
            n = max(n, int(r.sample_index) + 1)
    S, P = len(streams), len(problems)
    avail = np.zeros((S, P), dtype=np.int64)
    present = np.zeros((S, P, n), dtype=bool)
    answers: list[list[list[str | None]]] = [[[None] * n for _ in range(P)] for _ in range(S)]
    lp = np.full((S, P, n), np.nan)
    ent = np.full((S, P, n), np.nan)
    tok = np.zeros((S, P, n), dtype=np.int64)
    cost = np.full((S, P, n), np.nan)
    score = np.full((S, P, n), np.nan)
    for key, s in streams.items():
        for r in rows[key]:
            p, i = pindex[str(r.problem_id)], int(r.sample_index)
            if present[s, p, i]:
                continue  # a null-temperature row and a matching one: the first wins, as in replay
            sample = sample_from_row(r)
            # as the executor records a sample: only a finished one has an answer
            answer = extract_answer(sample.text, formats[key[2]]) if sample.finish_reason == "stop" else None
            mean_lp, mean_ent = sample_mean_logprob(sample), sample_mean_entropy(sample)
            present[s, p, i] = True
            answers[s][p][i] = answer
            lp[s, p, i] = np.nan if mean_lp is None else mean_lp
            ent[s, p, i] = np.nan if mean_ent is None else mean_ent
            tok[s, p, i] = sample.num_tokens
            cost[s, p, i] = np.nan if sample.cost is None else sample.cost
            score[s, p, i] = np.nan if sample.score is None else sample.score
    # replay serves indices 0..m-1: what a problem really has is its leading run of samples
    run = np.cumprod(present, axis=2)
    avail[:, :] = run.sum(axis=2)
    cls, correct, graded, exact_only, n_classes = _classes(answers, problems, equivalence, S, n)
    scored = score if not np.isnan(score).all() else None
    return BankArrays(
        problems, streams, n, avail, cls, lp, ent, tok, cost, scored, n_classes, correct, graded, exact_only
    )


def _classes(answers, problems: list[Problem], eq: Equivalence, S: int, n: int):
    P = len(problems)
    distinct_by_p = []
    pairs = []
    for p in range(P):
        distinct = sorted({a for s in range(S) for a in answers[s][p] if a is not None})
        distinct_by_p.append(distinct)
        pairs += [(a, b) for a in distinct for b in distinct if a != b]
        gold = problems[p].gold
        if gold is not None:
            pairs += [(gold, a) for a in distinct]
    eq.prepare(pairs)
    class_of: list[dict[str, int]] = []
    exact_only = np.zeros(P, dtype=bool)
    per_class_correct: list[list[bool]] = []
    for p, distinct in enumerate(distinct_by_p):
        ids: dict[str, int] = {}
        reps: list[str] = []
        ok = True
        for a in distinct:
            for ci, rep in enumerate(reps):
                if eq.same(rep, a):
                    ids[a] = ci
                    break
            else:
                ids[a] = len(reps)
                reps.append(a)
        # a clean partition: same() is symmetric and agrees with the classes on every pair
        for x, a in enumerate(distinct):
            for b in distinct[x + 1 :]:
                same = ids[a] == ids[b]
                if eq.same(a, b) != same or eq.same(b, a) != same:
                    ok = False
        gold = problems[p].gold
        corr = []
        for ci in range(len(reps)):
            members = [a for a in distinct if ids[a] == ci]
            verdicts = {eq.grade(gold, a) is True for a in members} if gold is not None else {False}
            if len(verdicts) > 1:
                ok = False
            corr.append(verdicts.pop())
        exact_only[p] = not ok
        class_of.append(ids)
        per_class_correct.append(corr)
    n_classes = max([len(c) for c in per_class_correct] + [1])
    cls = np.full((S, P, n), NO_CLASS, dtype=np.int64)
    for s in range(S):
        for p in range(P):
            ids = class_of[p]
            for i, a in enumerate(answers[s][p]):
                if a is not None:
                    cls[s, p, i] = ids[a]
    correct = np.zeros((P, n_classes), dtype=bool)
    for p, corr in enumerate(per_class_correct):
        correct[p, : len(corr)] = corr
    graded = np.array([p.gold is not None for p in problems], dtype=bool)
    return cls, correct, graded, exact_only, n_classes
