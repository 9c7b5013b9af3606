"""``--overwrite``: the one way a command replaces an earlier run, and only a run.

No command deletes a directory it did not create. A run directory is recognised by what a
run writes first (``cascadec.runtime.rundir.is_run_dir``: its lock file or manifest); anything else in ``--out`` is
the user's and is never removed, with or without ``--overwrite``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cascadec.errors import RunDirError
from cascadec.runtime.rundir import MANIFEST_NAME, RunDirLock, is_run_dir

__all__ = ["MANIFEST_NAME", "is_run_dir", "refuse_existing", "replace_run"]


def replace_run(out: Path) -> bool:
    """Delete the earlier run in ``out`` so a new one can start there; True if one was removed.

    A missing or empty ``out`` is left as it is; a directory that holds no run is refused.
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise RunDirError(f"{out}: --out must be a directory, and this is a file", code="E502")
    if not any(out.iterdir()):
        return False
    if not is_run_dir(out):
        raise RunDirError(
            f"{out}: holds no cascadec run (no run manifest); --overwrite only replaces a run, "
            "it never deletes other files: choose another --out",
            code="E502",
        )
    with RunDirLock(out):  # a run still writing there holds the lock: refused, nothing deleted
        shutil.rmtree(out)
    return True


def refuse_existing(out: Path, *, what: str = "a run") -> None:
    """Stop before touching a non-empty ``out`` unless the caller was given ``--overwrite``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(
            f"{out}: already holds {what if is_run_dir(out) else 'files'}; pass --overwrite to replace "
            "an earlier run, or choose another --out",
            code="E502",
        )
