"""Run directories are owned: checked before anything is written, locked while a run writes.

A run writes only into a directory that is new, empty, or holds a cascadec run (it has the
lock file below, or a run manifest). Never into a directory of the user's own files (``--out .``
next to the data), never over an input of the same run. While a run writes, it holds an
exclusive advisory lock (``fcntl.flock``) on ``DIR/.cascadec.lock``: the operating system
releases it when the process dies, however it dies (``kill -9`` included), so a stale lock
never blocks a resume, and a second writer fails at once with a message naming the holder.

``cascadec.limits.atomic_write`` is the one way results files are written: a temp file in the same
directory, fsync'd, then ``os.replace`` — a reader sees the old file or the new one, never half
of one, and a failure leaves no temp file behind.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from cascadec.errors import RunDirError

LOCK_FILE = ".cascadec.lock"
MANIFEST_NAME = "manifest.json"
PLAN_NAME = "plan.json"
_SHOWN = 5


def _is_run(out: Path, names: set[str]) -> bool:
    if LOCK_FILE in names:
        return True
    if MANIFEST_NAME not in names:
        return False
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "plan_hash" in manifest


def is_run_dir(out: str | Path) -> bool:
    """True when ``out`` is a directory that holds a cascadec run (its lock file or run manifest)."""
    out = Path(out)
    try:
        return out.is_dir() and _is_run(out, {p.name for p in out.iterdir()})
    except OSError:
        return False


def check_out_dir(out: str | Path, inputs: Iterable[str | Path | None] = (), *, resume: bool = False) -> Path:
    """Refuse an ``--out`` a run must not write into (nothing is written here; E502)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError("--out must be a directory, and this is a file", where=out)
    if out.is_dir():
        try:
            names = {p.name for p in out.iterdir()}
        except OSError as exc:
            raise RunDirError(f"cannot list --out: {exc.strerror or exc}", where=out) from None
        if names and not _is_run(out, names):
            shown = ", ".join(sorted(names)[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")
            raise RunDirError(
                f"--out is not empty and holds no cascadec run ({shown}); "
                "a run writes only into a new or empty directory, or its own run directory",
                where=out,
            )
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


class RunDirLock:
    """The exclusive lock of one run directory, held until :meth:`release` (or process death)."""

    def __init__(self, out: str | Path):
        import fcntl

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirError(
                f"another cascadec run is writing here ({holder}); wait for it to "
                "finish or stop it, then --resume",
                where=self.out,
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {int(info['pid'])} on host {str(info['host'])[:64]}, since {str(info['since'])[:32]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def claim(out: str | Path, inputs: Iterable[str | Path | None] = (), *, resume: bool = False) -> RunDirLock:
    """Check ``out`` (see :func:`check_out_dir`) and take its lock; the caller releases it."""
    check_out_dir(out, inputs, resume=resume)
    return RunDirLock(out)
