"""Run directories are owned: checked before anything is written, locked while a run writes.

A run writes only into a directory that is new, empty, or holds nothing but a cascadec run's
own files — proven by the folder's ownership record (``cascadec.outputs``), never guessed from
a ``manifest.json``. Never into a directory of the user's own files (``--out .`` next to the
data), never over an input of the same run. While a run writes, it holds an exclusive advisory
lock (``fcntl.flock``) on ``DIR/.cascadec.lock``: the operating system releases it when the
process dies, however it dies (``kill -9`` included), so a stale lock never blocks a resume,
and a second writer fails at once with a message naming the holder.

Every file of a run is written through :class:`cascadec.outputs.OwnedDir`: a temp file in the
same directory, fsync'd, then ``os.replace`` — a reader sees the old file or the new one, never
half of one, and a failure leaves no temp file behind — and recorded with its hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cascadec.errors import RunDirError
from cascadec.outputs import LOCK_FILE, RUN, OutputLock, OwnedDir, refuse_foreign, survey

__all__ = ["LOCK_FILE", "MANIFEST_NAME", "PLAN_NAME", "RunDirLock", "check_out_dir", "claim", "is_run_dir"]

MANIFEST_NAME = "manifest.json"
PLAN_NAME = "plan.json"
WRITES = "the run did not start"


class RunDirLock(OutputLock):
    """The exclusive lock of one run directory, held until :meth:`release` (or process death)."""

    def __init__(self, out: str | Path):
        super().__init__(out, "run")


def is_run_dir(out: str | Path) -> bool:
    """True when ``out`` is a directory holding a cascadec run (by its record, or an older run's layout)."""
    try:
        s = survey(out, RUN)
    except RunDirError:
        return False
    return s.kind == "run" and bool(s.owned)


def check_out_dir(out: str | Path, inputs: Iterable[str | Path | None] = (), *, resume: bool = False) -> Path:
    """Refuse an ``--out`` a run must not write into (nothing is written here; E502)."""
    out = Path(out)
    refuse_foreign(survey(out, RUN), RUN, WRITES)
    root = out.resolve()
    for item in inputs:
        if item is None or not Path(item).exists():
            continue
        path = Path(item).resolve()
        if path == root or root in path.parents:
            if resume and path == root / PLAN_NAME:
                continue  # the run's own plan: read, never rewritten on resume
            raise RunDirError(
                f"this input lies inside --out {out}, where the run writes its results; choose another --out",
                where=item,
            )
    return out


def claim(out: str | Path, inputs: Iterable[str | Path | None] = (), *, resume: bool = False) -> OwnedDir:
    """Check ``out`` (see :func:`check_out_dir`), take its lock and record; the caller releases it."""
    check_out_dir(out, inputs, resume=resume)
    return OwnedDir(out, RUN, WRITES)
