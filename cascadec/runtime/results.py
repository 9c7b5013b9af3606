"""The run directory: append-only journals while running, parquet tables once finished.

Layout of ``--out DIR``::

    manifest.json     plan hash, data fingerprint, versions, seeds, models, per-session stats
    plan.json         the plan that ran (byte-identical to ``cascadec compile`` output)
    samples.jsonl     journal: one line per sample, appended and fsync'd after every batch
    problems.jsonl    journal: one line per finished problem, appended and fsync'd per batch
    problems.parquet  written at the end (atomically: temp file + rename)
    samples.parquet   written at the end (atomically)

Once the tables are written and the manifest says ``complete``, the journals (about ten times
the tables' size) are deleted through the ownership record; ``--resume`` of a finished run reads
the tables instead.

Why journals: a ``kill -9`` can land anywhere. A journal line is only ever appended, so the
worst case is a torn last line, which resume drops (and truncates away). Resume refuses a
directory made by another plan or other data (E502), takes finished problems from
``problems.jsonl`` as they are, and re-walks unfinished ones through the same deterministic
decisions, feeding them the journaled samples instead of asking the backend again. Every
problem ends up exactly once, every finished sample is reused.

The records (their fields, types and meaning) are defined once in
:mod:`cascadec.runtime.records`: ``problems.parquet`` holds one :class:`ProblemRecord` per
problem and strategy in input order, with nested columns (``path``, ``models``, ``tiers`` —
per tier: decision, votes, signals), ``samples.parquet`` one :class:`SampleRecord` per sample
(plus ``votes``: whether it has an answer). Both carry the results schema version in their
parquet metadata, and the manifest is a :class:`Manifest` written only here.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from cascadec.errors import RunDirError
from cascadec.outputs import OwnedDir
from cascadec.plan import Plan, plan_to_json
from cascadec.runtime.outcomes import RunStatus
from cascadec.runtime.records import (
    RESULTS_SCHEMA_VERSION,
    SCHEMA_METADATA_KEY,
    Manifest,
    ModelStats,
    ProblemRecord,
    Record,
    RunInfo,
    SampleRecord,
    Session,
    Totals,
    arrow_schema,
)
from cascadec.runtime.rundir import claim

MANIFEST, PLAN_FILE = "manifest.json", "plan.json"
SAMPLES_JOURNAL, PROBLEMS_JOURNAL = "samples.jsonl", "problems.jsonl"
PROBLEMS_TABLE, SAMPLES_TABLE = "problems.parquet", "samples.parquet"

PROBLEM_COLUMNS = tuple(ProblemRecord.model_fields)
SAMPLE_COLUMNS = tuple(arrow_schema(SampleRecord).names)

SampleKey = tuple[str, str, int]  # (problem id, strategy key, tier index)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _holds_a_run(out: Path) -> str:
    """Why a folder holding a run is refused: a finished run is not offered --resume."""
    try:
        old = read_manifest(out)
    except Exception:  # noqa: BLE001 - a damaged manifest: the plain refusal
        old = None
    if old is not None and old.status == RunStatus.COMPLETE:
        done = f" ({old.totals.problems} problems)" if old.totals is not None else ""
        return (
            f"already holds a finished run{done}: its results are in {out / 'problems.parquet'} "
            "(cascadec.load_results, cascadec report); --overwrite to replace it, or choose another --out"
        )
    return (
        "already holds a run that did not finish; pass --resume to finish it, --overwrite to replace it, "
        "or choose another --out"
    )


def _read_journal(path: Path, model: type[Record]) -> list:
    """Every complete line of a journal, as records. Lines are written whole by one ``write``, so
    a kill can only leave a prefix: the bytes after the last newline are a torn line, cut off here."""
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
                rows.append(model.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                raise RunDirError(
                    f"corrupt journal line (edited by hand?): {where}: {first['msg']}", where=f"{path}:{n}"
                ) from None
    return rows


def _read_table(out: Path, name: str) -> list:
    """The records of a finished run's parquet table (what resume reads once the journals are gone)."""
    samples = name == SAMPLES_TABLE
    frame = load_results(out, samples=samples)
    model = SampleRecord if samples else ProblemRecord
    import pyarrow as pa

    rows = pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
    return [model.model_validate({k: v for k, v in row.items() if k in model.model_fields}) for row in rows]


class _Journal:
    def __init__(self, path: Path):
        self.path = path
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # never through a link
        self._f = os.fdopen(os.open(path, flags, 0o644), "ab")  # kept open for the whole run

    def append(self, records: Iterable[Record]) -> None:
        data = b"".join(r.model_dump_json().encode() + b"\n" for r in records)
        if data:
            self._f.write(data)
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def read_manifest(out: Path) -> Manifest:
    """The manifest of run directory ``out``, refused clearly when unreadable or of another version."""
    mpath = out / MANIFEST
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"unreadable manifest: {exc}", where=mpath) from None
    version = data.get("schema_version", data.get("results_version")) if isinstance(data, dict) else None
    if version != RESULTS_SCHEMA_VERSION:
        raise RunDirError(
            f"results schema version {version} (this cascadec reads version "
            f"{RESULTS_SCHEMA_VERSION}); run it again with the cascadec that wrote it, or start a "
            "new run directory",
            where=out,
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise RunDirError(f"invalid manifest: {str(exc).splitlines()[0]}", where=mpath) from None


class RunStore:
    """Results of one run: in memory (``out=None``) or journaled to a run directory.

    The one writer of ``manifest.json``: the executor reports model stats through
    :meth:`record_models`, the API the run's totals through :meth:`finalize`.
    """

    def __init__(
        self,
        out: str | Path | None,
        *,
        plan: Plan,
        data_fingerprint: str,
        info: RunInfo,
        resume: bool = False,
        inputs: Sequence[str | Path | None] = (),
    ):
        self.out = Path(out) if out is not None else None
        self.plan = plan
        self.samples: dict[SampleKey, dict[int, SampleRecord]] = {}
        self.finished: dict[tuple[str, str], ProblemRecord] = {}
        self.resumed = False
        self._journals: tuple[_Journal, _Journal] | None = None
        self._lock: OwnedDir | None = None  # the folder: locked, every file recorded
        self.manifest = Manifest(
            status=RunStatus.RUNNING,
            plan_hash=plan.hash,
            data_fingerprint=data_fingerprint,
            created=_now(),
            run=info,
            sessions=[],
        )
        if self.out is not None:
            self._lock = claim(self.out, inputs, resume=resume)  # owned and exclusive, or E502
            try:
                self._open(data_fingerprint, resume)
            except BaseException:
                self.close()
                raise

    def _open(self, data_fp: str, resume: bool) -> None:
        out = self.out
        assert out is not None
        if (out / MANIFEST).exists():
            if not resume:
                raise RunDirError(_holds_a_run(out), where=out)
            old = read_manifest(out)
            if old.plan_hash != self.plan.hash:
                raise RunDirError(
                    f"cannot resume: the run was started with plan {old.plan_hash}, this plan is {self.plan.hash}",
                    where=out,
                )
            if old.data_fingerprint != data_fp:
                raise RunDirError(
                    "cannot resume: the problems differ from the run's "
                    "(other data file, --limit, --column or edited rows)",
                    where=out,
                )
            self.manifest = old
            finished = old.status == RunStatus.COMPLETE and not (out / SAMPLES_JOURNAL).exists()
            for rec in (
                _read_table(out, SAMPLES_TABLE)
                if finished
                else _read_journal(out / SAMPLES_JOURNAL, SampleRecord)
            ):
                self.samples.setdefault((rec.id, rec.strategy, rec.tier), {})[rec.sample_index] = rec
            for row in (
                _read_table(out, PROBLEMS_TABLE)
                if finished
                else _read_journal(out / PROBLEMS_JOURNAL, ProblemRecord)
            ):
                self.finished[(row.id, row.strategy)] = row
            self.resumed = True
        else:
            if (out / SAMPLES_JOURNAL).exists() or (out / PROBLEMS_JOURNAL).exists():
                raise RunDirError(
                    "has journals but no manifest.json; not a cascadec run directory, or a damaged one",
                    where=out,
                )
            out.mkdir(parents=True, exist_ok=True)
            assert self._lock is not None
            self._lock.write(PLAN_FILE, plan_to_json(self.plan).encode())
        self._update(
            status=RunStatus.RUNNING,
            sessions=[*self.manifest.sessions, Session(started=_now(), resumed=self.resumed)],
        )
        assert self._lock is not None
        self._journals = (
            _Journal(self._lock.journal(SAMPLES_JOURNAL)),
            _Journal(self._lock.journal(PROBLEMS_JOURNAL)),
        )

    # --- the manifest ---------------------------------------------------------------------------
    def _update(self, **changes) -> None:
        self.manifest = self.manifest.model_copy(update=changes)
        if self._lock is not None:
            text = self.manifest.model_dump_json(indent=2)
            self._lock.write(MANIFEST, (text + "\n").encode())

    def _update_session(self, **changes) -> None:
        if self.manifest.sessions:
            last = self.manifest.sessions[-1].model_copy(update=changes)
            self._update(sessions=[*self.manifest.sessions[:-1], last])

    def record_models(self, stats: dict[str, ModelStats]) -> None:
        """This session's per-model stats so far (written as soon as a model is done)."""
        self._update_session(models=dict(stats))

    # --- during the run ---------------------------------------------------------------------
    def reuse(
        self, problem_id: str, strategy: str, tier: int, first: int, n: int
    ) -> list[SampleRecord] | None:
        """The journaled samples ``first..first+n-1`` of that tier, or None if any is missing."""
        have = self.samples.get((problem_id, strategy, tier), {})
        got = [have.get(i) for i in range(first, first + n)]
        return None if any(r is None for r in got) else got  # type: ignore[return-value]

    def add_samples(self, records: Sequence[SampleRecord]) -> None:
        for rec in records:
            self.samples.setdefault((rec.id, rec.strategy, rec.tier), {})[rec.sample_index] = rec
        if self._journals:
            self._journals[0].append(records)

    def add_finished(self, records: Sequence[ProblemRecord]) -> None:
        for rec in records:
            self.finished[(rec.id, rec.strategy)] = rec
        if self._journals:
            self._journals[1].append(records)

    # --- at the end -------------------------------------------------------------------------
    def tables(self, order: Sequence[tuple[str, str]]):
        """(problems, samples) Arrow tables in ``order`` of (problem id, strategy key)."""
        problems = [self.finished[key] for key in order]
        by_job: dict[tuple[str, str], list[SampleKey]] = {}
        for skey in sorted(self.samples, key=lambda k: k[2]):
            by_job.setdefault(skey[:2], []).append(skey)
        samples = [
            self.samples[skey][idx]
            for job in order
            for skey in by_job.get(job, ())
            for idx in sorted(self.samples[skey])
        ]
        return problems_table(problems), samples_table(samples)

    def finalize(self, order: Sequence[tuple[str, str]], totals: Totals) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Write the parquet tables and complete the manifest; returns (problems, samples) frames."""
        problems, samples = self.tables(order)
        if self._lock is not None:
            for name, table in ((PROBLEMS_TABLE, problems), (SAMPLES_TABLE, samples)):
                _write_parquet(self._lock, name, table)
            self._update_session(finished=_now())
            self._update(status=RunStatus.COMPLETE, totals=totals)
            # the run is whole in its parquet tables: the journals (ten times their size) go,
            # through the ownership record; a kill before this leaves a finished run with them
            if self._journals:
                for j in self._journals:
                    j.close()
                self._journals = None
            for name in (SAMPLES_JOURNAL, PROBLEMS_JOURNAL):
                self._lock.remove(name)
        return _frame(problems), _frame(samples)

    def close(self) -> None:
        if self._journals:
            for j in self._journals:
                j.close()
            self._journals = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# --- typed frames ---------------------------------------------------------------------------
def _types_mapper(dtype):
    """Nested Arrow columns stay Arrow-typed in pandas (``.list`` / ``.struct`` accessors);
    booleans become pandas' nullable boolean (``correct`` is NA without gold)."""
    import pyarrow as pa

    if pa.types.is_list(dtype) or pa.types.is_struct(dtype):
        return pd.ArrowDtype(dtype)
    if pa.types.is_boolean(dtype):
        return pd.BooleanDtype()
    return None


def _frame(table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_types_mapper)


def problems_table(records: Sequence[ProblemRecord]):
    """Problem records as an Arrow table of the results schema."""
    import pyarrow as pa

    rows = [r.model_dump(mode="json") for r in records]
    return pa.Table.from_pylist(rows, schema=arrow_schema(ProblemRecord))


def samples_table(records: Sequence[SampleRecord]):
    """Sample records as an Arrow table, with the derived ``votes`` column."""
    import pyarrow as pa

    rows = [{**r.model_dump(mode="json"), "votes": r.votes} for r in records]
    return pa.Table.from_pylist(rows, schema=arrow_schema(SampleRecord))


def problems_frame(records: Sequence[ProblemRecord]) -> pd.DataFrame:
    """Problem records as a typed frame (nested columns as ``pd.ArrowDtype``)."""
    return _frame(problems_table(records))


def samples_frame(records: Sequence[SampleRecord]) -> pd.DataFrame:
    return _frame(samples_table(records))


def _write_parquet(folder: OwnedDir, name: str, table) -> None:
    """Write one results table (its schema carries the version), atomically and recorded."""
    import pyarrow.parquet as pq

    folder.write(name, lambda tmp: pq.write_table(table, tmp))


def load_results(out: str | Path, samples: bool = False) -> pd.DataFrame:
    """The problems (or samples) of a finished run directory as a typed frame.

    Nested columns (``path``, ``models``, ``tiers``) come back as ``pd.ArrowDtype`` lists of
    structs. A directory written under another results schema version is refused (E502).
    """
    import pyarrow.parquet as pq

    out = Path(out)
    path = out / (SAMPLES_TABLE if samples else PROBLEMS_TABLE)
    if not (out / MANIFEST).exists():
        raise RunDirError(f"not a cascadec run directory (no {MANIFEST})", where=out)
    manifest = read_manifest(out)
    if not path.exists() or manifest.status != RunStatus.COMPLETE:
        raise RunDirError("the run is not finished; run it again with --resume", where=out)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunDirError(f"corrupt results: cannot read them ({why[:200]})", where=path) from None
    version = (table.schema.metadata or {}).get(SCHEMA_METADATA_KEY, b"?").decode()
    if version != str(RESULTS_SCHEMA_VERSION):
        raise RunDirError(f"results schema version {version}, expected {RESULTS_SCHEMA_VERSION}", where=path)
    return _frame(_conform(table, arrow_schema(SampleRecord if samples else ProblemRecord), path))


def _conform(table, expected, path: Path):
    """The table with the records' columns and types, before anything reads a row: an optional
    column a run of an older version lacks is added as nulls; a required one missing, or a
    column of a type that does not cast, is a corrupt results file (E502)."""
    import pyarrow as pa

    columns = []
    for field in expected:
        if field.name in table.column_names:
            columns.append(table.column(field.name))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise RunDirError(f"corrupt results: no column {field.name!r}", where=path)
    try:
        return pa.Table.from_arrays(columns, schema=expected.remove_metadata()).cast(expected)
    except Exception as exc:  # a type that does not cast (ArrowInvalid, ArrowNotImplementedError)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunDirError(f"corrupt results: not the results schema ({why[:200]})", where=path) from None
