"""``--overwrite``: the one way a command replaces an earlier run, and only its own files.

No command deletes a file it did not write. What a run wrote is what its folder's ownership
record lists (``cascadec.outputs``); ``--overwrite`` deletes exactly those files, and a folder
holding anything else (a user's notes, a folder of data, a copied ``manifest.json`` beside a
thesis) is refused whole, nothing deleted, with or without ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

from cascadec.errors import RunDirError
from cascadec.outputs import RUN, clear, refuse_foreign, survey
from cascadec.runtime.rundir import MANIFEST_NAME, WRITES, is_run_dir

__all__ = ["MANIFEST_NAME", "is_run_dir", "refuse_existing", "replace_run"]


def replace_run(out: Path) -> bool:
    """Delete the earlier run in ``out`` so a new one can start there; True if one was removed.

    A missing or empty ``out`` is left as it is; a directory holding anything but a run's own
    files is refused (E502) and nothing in it is deleted.
    """
    return clear(Path(out), RUN, "nothing was deleted")


def refuse_existing(out: Path, *, what: str = "a run") -> None:
    """Stop before touching a non-empty ``out`` unless the caller was given ``--overwrite``."""
    s = survey(Path(out), RUN)
    refuse_foreign(s, RUN, WRITES)
    if s.owned:
        raise RunDirError(
            f"already holds {what}; pass --overwrite to replace it, or choose another --out", where=out
        )
