"""The run directory: append-only journals while running, parquet tables once finished.

Layout of ``--out DIR``::

    manifest.json     plan hash, data fingerprint, versions, seeds, models, per-session stats
    plan.json         the plan that ran (byte-identical to ``cascadec compile`` output)
    samples.jsonl     journal: one line per sample, appended and fsync'd after every batch
    problems.jsonl    journal: one line per finished problem, appended and fsync'd per batch
    problems.parquet  written at the end (atomically: temp file + rename)
    samples.parquet   written at the end (atomically)

Why journals: a ``kill -9`` can land anywhere. A journal line is only ever appended, so the
worst case is a torn last line, which resume drops (and truncates away). Resume refuses a
directory made by another plan or other data (E502), takes finished problems from
``problems.jsonl`` as they are, and re-walks unfinished ones through the same deterministic
decisions, feeding them the journaled samples instead of asking the backend again. Every
problem ends up exactly once, every finished sample is reused.

``problems.parquet`` (one row per problem and strategy, in input order): ``id``, ``strategy``
(the plan's strategy key, a canonical marker when there is one), ``final_answer``, ``gold``,
``correct`` (nullable bool; NA without gold), ``tiers_used``, ``path`` (``"0:escalate >
1:retry..."``: original tier index and decision per tier that ran), ``models`` (JSON list),
``stop_reason`` (``confident`` | ``last_tier`` | ``budget``), ``decisions`` / ``votes`` /
``signals`` (JSON lists, one entry per tier that ran), ``samples``, ``tokens``, ``cost``
(Σ tokens × cost_per_token) and ``seconds`` (each batch's generate time shared by tokens).

``samples.parquet`` (one row per sample): ``id``, ``strategy``, ``tier``, ``model``, ``round``,
``phase`` (``sample`` | ``retry`` | ``explore``), ``sample_index``, ``text``, ``answer``
(None: no answer or truncated), ``votes``, ``num_tokens``, ``finish_reason``,
``mean_logprob``, ``mean_entropy``, ``temperature``, ``seconds``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from cascadec.errors import RunDirError
from cascadec.plan import Plan, plan_to_json
from cascadec.runtime.jobs import SampleRecord
from cascadec.runtime.rundir import RunDirLock, atomic_write, claim

RESULTS_VERSION = 1
MANIFEST, PLAN_FILE = "manifest.json", "plan.json"
SAMPLES_JOURNAL, PROBLEMS_JOURNAL = "samples.jsonl", "problems.jsonl"
PROBLEMS_TABLE, SAMPLES_TABLE = "problems.parquet", "samples.parquet"

PROBLEM_COLUMNS = (
    "id",
    "strategy",
    "final_answer",
    "gold",
    "correct",
    "tiers_used",
    "path",
    "models",
    "stop_reason",
    "decisions",
    "votes",
    "signals",
    "samples",
    "tokens",
    "cost",
    "seconds",
)
SAMPLE_COLUMNS = (
    "id",
    "strategy",
    "tier",
    "model",
    "round",
    "phase",
    "sample_index",
    "text",
    "answer",
    "votes",
    "num_tokens",
    "finish_reason",
    "mean_logprob",
    "mean_entropy",
    "temperature",
    "seconds",
)

SampleKey = tuple[str, str, int]  # (problem id, strategy key, tier index)


def _read_journal(path: Path) -> list[dict]:
    """Every complete line of a journal. Lines are written whole by one ``write``, so a kill can
    only leave a prefix: the bytes after the last newline are a torn line, cut off here."""
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        with open(path, "r+b") as f:
            f.truncate(cut)
    rows = []
    for n, line in enumerate(data[:cut].splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise RunDirError("corrupt journal line (edited by hand?)", where=f"{path}:{n}") from None
    return rows


class _Journal:
    def __init__(self, path: Path):
        self.path = path
        self._f = open(path, "ab")  # noqa: SIM115 (kept open for the whole run)

    def append(self, rows: Iterable[dict]) -> None:
        data = b"".join(json.dumps(r, ensure_ascii=False, allow_nan=False).encode() + b"\n" for r in rows)
        if data:
            self._f.write(data)
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def _record_from(row: dict) -> SampleRecord:
    fields = {f.name for f in dataclasses.fields(SampleRecord)}
    return SampleRecord(**{k: v for k, v in row.items() if k in fields})


class RunStore:
    """Results of one run: in memory (``out=None``) or journaled to a run directory."""

    def __init__(
        self,
        out: str | Path | None,
        *,
        plan: Plan,
        data_fingerprint: str,
        resume: bool = False,
        meta: dict | None = None,
        inputs: Sequence[str | Path | None] = (),
    ):
        self.out = Path(out) if out is not None else None
        self.plan = plan
        self.samples: dict[SampleKey, dict[int, SampleRecord]] = {}
        self.finished: dict[tuple[str, str], dict] = {}
        self.manifest: dict = {}
        self.resumed = False
        self._journals: tuple[_Journal, _Journal] | None = None
        self._lock: RunDirLock | None = None
        if self.out is not None:
            self._lock = claim(self.out, inputs, resume=resume)  # owned and exclusive, or E502
            try:
                self._open(data_fingerprint, resume, meta or {})
            except BaseException:
                self.close()
                raise

    def _open(self, data_fp: str, resume: bool, meta: dict) -> None:
        out = self.out
        assert out is not None
        mpath = out / MANIFEST
        if mpath.exists():
            if not resume:
                raise RunDirError(
                    "already holds a run; pass --resume to finish it, --overwrite to replace it, or choose another --out",
                    where=out,
                )
            try:
                self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise RunDirError(f"unreadable manifest: {exc}", where=mpath) from None
            if self.manifest.get("plan_hash") != self.plan.hash:
                raise RunDirError(
                    f"cannot resume: the run was started with plan "
                    f"{self.manifest.get('plan_hash')}, this plan is {self.plan.hash}",
                    where=out,
                )
            if self.manifest.get("data_fingerprint") != data_fp:
                raise RunDirError(
                    "cannot resume: the problems differ from the run's "
                    "(other data file, --limit, --column or edited rows)",
                    where=out,
                )
            for row in _read_journal(out / SAMPLES_JOURNAL):
                rec = _record_from(row)
                self.samples.setdefault((row["id"], row["strategy"], rec.tier), {})[rec.sample_index] = rec
            for row in _read_journal(out / PROBLEMS_JOURNAL):
                self.finished[(row["id"], row["strategy"])] = row
            self.resumed = True
        else:
            if (out / SAMPLES_JOURNAL).exists() or (out / PROBLEMS_JOURNAL).exists():
                raise RunDirError(
                    "has journals but no manifest.json; not a cascadec run directory, or a damaged one",
                    where=out,
                )
            out.mkdir(parents=True, exist_ok=True)
            atomic_write(out / PLAN_FILE, plan_to_json(self.plan).encode())
            self.manifest = {
                "results_version": RESULTS_VERSION,
                "status": "running",
                "plan_hash": self.plan.hash,
                "data_fingerprint": data_fp,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "sessions": [],
                **meta,
            }
        self.manifest["status"] = "running"
        self.manifest.setdefault("sessions", []).append(
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resumed": self.resumed,
                "finished": None,
                "models": {},
            }
        )
        self.write_manifest()
        self._journals = (_Journal(out / SAMPLES_JOURNAL), _Journal(out / PROBLEMS_JOURNAL))

    # --- during the run ---------------------------------------------------------------------
    def reuse(
        self, problem_id: str, strategy: str, tier: int, first: int, n: int
    ) -> list[SampleRecord] | None:
        """The journaled samples ``first..first+n-1`` of that tier, or None if any is missing."""
        have = self.samples.get((problem_id, strategy, tier), {})
        got = [have.get(i) for i in range(first, first + n)]
        return None if any(r is None for r in got) else got  # type: ignore[return-value]

    def add_samples(self, batch: Sequence[tuple[str, str, SampleRecord]]) -> None:
        for pid, key, rec in batch:
            self.samples.setdefault((pid, key, rec.tier), {})[rec.sample_index] = rec
        if self._journals:
            self._journals[0].append(
                {"id": pid, "strategy": key, **dataclasses.asdict(rec)} for pid, key, rec in batch
            )

    def add_finished(self, rows: Sequence[dict]) -> None:
        for row in rows:
            self.finished[(row["id"], row["strategy"])] = row
        if self._journals:
            self._journals[1].append(rows)

    def write_manifest(self) -> None:
        if self.out is not None:
            text = json.dumps(self.manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str)
            atomic_write(self.out / MANIFEST, (text + "\n").encode())

    # --- at the end -------------------------------------------------------------------------
    def tables(self, order: Sequence[tuple[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(problems, samples) frames in ``order`` of (problem id, strategy key)."""
        problems = problems_frame([self.finished[key] for key in order])
        by_job: dict[tuple[str, str], list[SampleKey]] = {}
        for skey in sorted(self.samples, key=lambda k: k[2]):
            by_job.setdefault(skey[:2], []).append(skey)
        rows = []
        for pid, key in order:
            for skey in by_job.get((pid, key), ()):
                for idx in sorted(self.samples[skey]):
                    rec = self.samples[skey][idx]
                    rows.append({"id": pid, "strategy": key, **dataclasses.asdict(rec), "votes": rec.votes})
        return problems, samples_frame(rows)

    def finalize(self, order: Sequence[tuple[str, str]], totals: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
        problems, samples = self.tables(order)
        if self.out is not None:
            for name, df in ((PROBLEMS_TABLE, problems), (SAMPLES_TABLE, samples)):
                atomic_write(self.out / name, lambda tmp, df=df: df.to_parquet(tmp, index=False))
            self.manifest["status"] = "complete"
            self.manifest["totals"] = totals
            self.manifest["sessions"][-1]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.write_manifest()
        return problems, samples

    def close(self) -> None:
        if self._journals:
            for j in self._journals:
                j.close()
            self._journals = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def problems_frame(rows: Sequence[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(PROBLEM_COLUMNS))
    df["correct"] = pd.array(df["correct"].tolist(), dtype="boolean")
    for col in ("tiers_used", "samples", "tokens"):
        df[col] = df[col].astype("int64")
    for col in ("cost", "seconds"):
        df[col] = df[col].astype("float64")
    return df


def samples_frame(rows: Sequence[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(SAMPLE_COLUMNS))
    for col in ("tier", "round", "sample_index", "num_tokens"):
        df[col] = df[col].astype("int64")
    for col in ("mean_logprob", "mean_entropy", "temperature", "seconds"):
        df[col] = df[col].astype("float64")
    df["votes"] = df["votes"].astype(bool)
    return df


def load_results(out: str | Path, samples: bool = False) -> pd.DataFrame:
    """The ``problems.parquet`` (or ``samples.parquet``) of a finished run directory."""
    path = Path(out) / (SAMPLES_TABLE if samples else PROBLEMS_TABLE)
    if not path.exists():
        if (Path(out) / MANIFEST).exists():
            raise RunDirError("the run is not finished; run it again with --resume", where=out)
        raise RunDirError(f"not a cascadec run directory (no {path.name})", where=out)
    return pd.read_parquet(path)
