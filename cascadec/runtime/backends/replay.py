"""Replay backend: serve recorded samples from a sample bank instead of running a model.

A bank holds every sample of every model on a problem set (at the largest k anyone will
ask for), so any plan can be run, simulated and tested without a GPU. Replay is
deterministic: request ``first_sample=s, n=m`` for problem P on model M returns bank rows
``(M, P, s) .. (M, P, s+m-1)`` — retries and rounds continue the numbering and so get fresh
samples, exactly as a seeded engine would.

A run's own ``samples.parquet`` is a bank too (see :func:`bank_from_samples`): record once
with a real engine, then replay any plan over it.

Bank schema (parquet; :func:`write_bank` writes one):

=============  ===========  ==============================================================
column         type         meaning
=============  ===========  ==============================================================
model          string       the plan model id (``PlanModel.id``; its ``path`` also matches)
problem_id     string       the problem's id
sample_index   int          0, 1, 2, ... per (model, problem[, temperature])
text           string       the generated text
num_tokens     int          generated tokens
finish_reason  string       ``stop`` or ``length`` (optional, default ``stop``)
logprobs       list<float>  chosen-token logprobs (optional, may be null)
entropies      list<float>  per-token entropies (optional, may be null)
confidences    list<float>  per-token confidence, -mean top-L logprob (optional, may be null)
score          float        an external score of the sample: reward model, verifier, judge
                            (optional, may be null; signals ``score_*``, vote metric ``score``)
cost           float        the sample's recorded cost in the registry's unit, e.g. an API's
                            price (optional, may be null: then num_tokens x cost per token)
temperature    float        optional; when present a request only gets rows at its
                            temperature (null rows match any temperature)
=============  ===========  ==============================================================

``CASCADEC_REPLAY_DELAY`` (seconds) makes every ``generate`` call (and every ``poll`` that
finishes samples) sleep that long: it turns replay into a slow engine for interruption tests.

Replay also streams (:mod:`cascadec.runtime.backends.streaming`): ``submit`` queues samples,
``poll`` finishes at most ``per_poll`` of them (all by default) in submission order, and with
``stream_tokens`` a sample's recorded logprobs and token confidences come ``piece`` tokens a
poll before it finishes, so an abort can land mid-sample (the sample then keeps the text of its
bank row and the tokens streamed so far; a row recorded as aborted comes back as recorded).
Same samples as ``generate``, whatever the schedule.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cascadec.errors import BackendError, CascadecError, DataError, InputFileError
from cascadec.limits import MAX_DATA_BYTES, check_regular_file
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import Capabilities, GenerationRequest, ProgressFn, Sample
from cascadec.runtime.backends.streaming import ABORT, StreamEvent, aborted
from cascadec.runtime.validate import validate_bank, validate_samples

REQUIRED = ("model", "problem_id", "sample_index", "text", "num_tokens")
DELAY_ENV = "CASCADEC_REPLAY_DELAY"
BANK_FILE = "samples.parquet"  # a bank directory is a run directory: its samples are the bank


def bank_path(bank: str | Path) -> Path:
    """A bank given as its file or as its (run) directory: the file to read."""
    path = Path(bank)
    return path / BANK_FILE if path.is_dir() else path


def read_bank(bank: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(bank, pd.DataFrame):
        df = bank
        source = "<bank frame>"
    else:
        source = str(bank)
        bank = bank_path(bank)
        if not bank.exists():
            raise InputFileError("no such sample bank", where=source)
        try:
            check_regular_file(bank, MAX_DATA_BYTES, "sample bank")
        except CascadecError as exc:
            raise InputFileError(exc.message, where=source) from None
        try:
            df = (
                pd.read_parquet(bank)
                if str(bank).endswith((".parquet", ".pq"))
                else pd.read_json(bank, lines=True, encoding="utf-8-sig")
            )
        except Exception as exc:
            raise DataError(f"cannot read sample bank: {str(exc).splitlines()[0]}", where=source) from None
    if "problem_id" not in df.columns and {"id", "model", "mean_logprob"} <= set(df.columns):
        validate_samples(df, source)  # validate, then convert: every cell it reads checked first
        df = bank_from_samples(df)  # a run's samples.parquet: replay what that run recorded
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"sample bank lacks column(s) {', '.join(missing)} (a bank needs {', '.join(REQUIRED)})",
            where=source,
        )
    return validate_bank(df, source)  # every cell typed and bounded before any run starts


def require_first_tiers(bank: pd.DataFrame, prepared, source: str = "the sample bank") -> None:
    """Before a replay run starts: the bank holds every problem's first-tier samples (its model, at
    its temperature, at least k of them) — a bank of other problems fails now, naming how many
    and a few, not after hours of replaying the ones it has (BackendError, E501)."""
    have: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    temps = bank["temperature"].tolist() if "temperature" in bank.columns else [None] * len(bank)
    for model, pid, temp in zip(
        bank["model"].astype(str), bank["problem_id"].astype(str), temps, strict=True
    ):
        have[(model, pid)].append(None if temp is None or _null(temp) else float(temp))
    missing: list[str] = []
    for problem, _strategy, tiers in prepared.assignments:
        tier = tiers[0]
        model = prepared.plan.models[tier.model]
        rows = have.get((model.id, problem.id)) or have.get((model.path, problem.id)) or []
        got = sum(1 for t in rows if t is None or abs(t - tier.temperature) < 1e-6)
        if got < tier.k:
            missing.append(f"{problem.id!r} ({model.id}, T={tier.temperature:g}: {got} of {tier.k})")
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise BackendError(
            f"the sample bank lacks samples of the first tier for {len(missing)} of "
            f"{len(prepared.assignments)} problems: {', '.join(missing[:3])}{more}; record them (bank build) or run the problems "
            "the bank has",
            where=source,
        )


def write_bank(rows: pd.DataFrame | Sequence[dict], path: str | Path) -> Path:
    """Write a bank parquet file (validating the columns) and return its path."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    read_bank(df)
    df = df.astype({"model": str, "problem_id": str, "sample_index": "int64", "num_tokens": "int64"})
    df.to_parquet(path, index=False)
    return Path(path)


def bank_from_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """A bank from a run's ``samples.parquet``: record once with a real engine, replay any plan.

    A run keeps each sample's token records (``token_logprobs``, ``token_confidence``); the
    bank carries them, and the mean entropy as a one-element list (a run made before token
    records carries its mean logprob that way too): every signal replays exactly. When several
    strategies drew the same (model, problem, temperature, index), the bank holds it once
    (:func:`~cascadec.runtime.validate.validate_bank`: the same text, or the bank is refused).
    ``read_bank`` checks a run's cells (:func:`~cascadec.runtime.validate.validate_samples`)
    before converting them.
    """
    means = [None if pd.isna(v) else [float(v)] for v in samples["mean_logprob"]]
    tokens = samples["token_logprobs"] if "token_logprobs" in samples else [None] * len(samples)
    confidences = samples["token_confidence"] if "token_confidence" in samples else [None] * len(samples)
    rows = pd.DataFrame(
        {
            "model": samples["model"].astype(str),
            "problem_id": samples["id"].astype(str),
            "sample_index": samples["sample_index"].astype("int64"),
            "text": samples["text"],
            "num_tokens": samples["num_tokens"].astype("int64"),
            "finish_reason": samples["finish_reason"],
            "logprobs": [m if _null(t) else _token_list(t) for m, t in zip(means, tokens, strict=True)],
            "entropies": [None if pd.isna(v) else [float(v)] for v in samples["mean_entropy"]],
            "confidences": [None if _null(c) else _token_list(c) for c in confidences],
            "temperature": samples["temperature"] if "temperature" in samples else float("nan"),
            "score": samples["score"] if "score" in samples else float("nan"),
            "cost": samples["cost"] if "cost" in samples else float("nan"),
        }
    )
    return rows


def _null(value) -> bool:
    """A missing cell: None, NaN or pandas' NA (lists are never null)."""
    return value is None or (not hasattr(value, "__len__") and bool(pd.isna(value)))


def _token_list(values) -> list[float]:
    """A stored token column as floats, null entries (an engine's -inf) left out: every signal
    skips non-finite values anyway, so the bank replays the same numbers."""
    return [float(x) for x in values if not _null(x)]


def _floats(value) -> tuple[float, ...] | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return tuple(float(x) for x in value)


def sample_from_row(r) -> Sample:
    """One bank row (a pandas itertuples row) as the sample an engine would have returned."""
    finish = getattr(r, "finish_reason", "stop")
    return Sample(
        text=str(r.text),
        num_tokens=int(r.num_tokens),
        finish_reason=str(finish) if isinstance(finish, str) and finish else "stop",
        logprobs=_floats(getattr(r, "logprobs", None)),
        entropies=_floats(getattr(r, "entropies", None)),
        confidences=_floats(getattr(r, "confidences", None)),
        score=_real(getattr(r, "score", None)),
        cost=_real(getattr(r, "cost", None)),
    )


def _real(value) -> float | None:
    """An optional number cell (``score``, ``cost``): None when absent or null."""
    return None if value is None or _null(value) else float(value)


class ReplayBackend:
    """Serves bank samples; counts loads and calls so tests can check the schedule."""

    name = "replay"
    capabilities = Capabilities(stream=True)

    def __init__(
        self,
        bank: str | Path | pd.DataFrame,
        delay: float | None = None,
        per_poll: int | None = None,
        piece: int = 4,
    ):
        if per_poll is not None and per_poll < 1 or piece < 1:
            raise ValueError("per_poll and piece must be >= 1")
        self.bank = read_bank(bank)
        self.per_poll = per_poll
        self.piece = piece
        self._running: list[_Running] = []
        self.delay = float(os.environ.get(DELAY_ENV, "0") or 0) if delay is None else delay
        self.loads: list[str] = []
        self.calls = 0
        self.model: PlanModel | None = None
        self._index: dict[tuple[str, int], list[tuple[float | None, Sample]]] = {}

    def load(self, model: PlanModel) -> None:
        rows = self.bank[self.bank["model"].astype(str) == model.id]
        if rows.empty:
            rows = self.bank[self.bank["model"].astype(str) == model.path]
        if rows.empty:
            have = ", ".join(sorted(self.bank["model"].astype(str).unique()))
            raise BackendError(f"the sample bank has no samples of model {model.id!r} (it has: {have})")
        has_t = "temperature" in rows.columns
        index: dict[tuple[str, int], list[tuple[float | None, Sample]]] = defaultdict(list)
        for r in rows.itertuples(index=False):
            temp = getattr(r, "temperature", None) if has_t else None
            temp = None if temp is None or (isinstance(temp, float) and math.isnan(temp)) else float(temp)
            index[(str(r.problem_id), int(r.sample_index))].append((temp, sample_from_row(r)))
        self._index = dict(index)
        self.model = model
        self.loads.append(model.id)

    def _sample(self, problem_id: str, i: int, temperature: float) -> Sample | None:
        for temp, sample in self._index.get((problem_id, i), ()):
            if temp is None or abs(temp - temperature) < 1e-6:
                return sample
        return None

    def _samples(self, req: GenerationRequest) -> list[Sample]:
        if self.model is None:
            raise BackendError("replay backend: generate() before load()")
        got = [
            self._sample(req.problem_id, i, req.temperature)
            for i in range(req.first_sample, req.first_sample + req.n)
        ]
        if any(s is None for s in got):
            have = sum(1 for (pid, _i) in self._index if pid == req.problem_id)
            lacking = [req.first_sample + j for j, s in enumerate(got) if s is None]
            raise BackendError(
                f"the sample bank lacks samples for model {self.model.id!r}, problem "
                f"{req.problem_id!r}, temperature {req.temperature:g}: indices {lacking[0]}..{lacking[-1]} "
                f"asked, {have} recorded; record a larger bank or lower k"
            )
        return got  # type: ignore[return-value]

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[list[Sample]]:
        if self.model is None:
            raise BackendError("replay backend: generate() before load()")
        self.calls += 1
        if self.delay > 0:
            time.sleep(self.delay)
        out = []
        for req in requests:
            out.append(self._samples(req))
            if progress is not None:
                progress(1)
        return out

    # --- streaming ----------------------------------------------------------------------------
    def submit(self, requests: Sequence[GenerationRequest], stream_tokens: bool = False) -> None:
        for req in requests:
            for i, sample in enumerate(self._samples(req)):
                self._running.append(_Running(req.request_id, i, sample, stream_tokens))

    def abort(self, request_id: str, index: int | None = None) -> None:
        for run in self._running:
            if run.request_id == request_id and (index is None or run.index == index):
                run.aborted = True

    def poll(self, timeout: float | None = None) -> list[StreamEvent]:
        if not self._running:
            return []
        self.calls += 1
        if self.delay > 0:
            time.sleep(self.delay)
        events: list[StreamEvent] = []
        finished = 0
        for run in self._running:
            if self.per_poll is not None and finished >= self.per_poll:
                break
            lps = run.sample.logprobs or ()
            confs = run.sample.confidences or ()
            length = max(len(lps), len(confs))
            if run.aborted:
                run.done, finished = True, finished + 1
                if run.sample.finish_reason == ABORT:  # a recorded abort: what the engine generated
                    events.append(StreamEvent(run.request_id, run.index, run.sample))
                    continue
                partial = Sample(
                    run.sample.text,
                    run.sent,
                    "stop",
                    lps[: run.sent] or None,
                    (run.sample.entropies or ())[: run.sent] or None,
                    confs[: run.sent] or None,
                )
                events.append(StreamEvent(run.request_id, run.index, aborted(partial)))
            elif run.stream and run.sent < length:
                end = run.sent + self.piece
                events.append(
                    StreamEvent(
                        run.request_id,
                        run.index,
                        logprobs=tuple(lps[run.sent : end]),
                        confidences=tuple(confs[run.sent : end]),
                    )
                )
                run.sent = min(end, length)
            else:
                run.done, finished = True, finished + 1
                events.append(StreamEvent(run.request_id, run.index, run.sample))
        self._running = [r for r in self._running if not r.done]
        return events

    def close(self) -> None:
        self._running = []
        self.model = None
        self._index = {}


class _Running:
    """A replayed sample in flight."""

    def __init__(self, request_id: str, index: int, sample: Sample, stream: bool):
        self.request_id, self.index, self.sample, self.stream = request_id, index, sample, stream
        self.sent = 0  # logprobs streamed so far
        self.aborted = False
        self.done = False
