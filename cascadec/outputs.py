"""Output folders cascadec owns, proven by its own record — never guessed from what a folder holds.

Every folder cascadec writes (a run or bank directory, a report, an optimize frontier) carries
``.cascadec-owned.json``: which kind of output it is and every file cascadec wrote there, with
the sha256 of each version it wrote (journals, appended while a run goes, are listed by name,
and deleted — file and entry — once the run's parquet tables are written: :meth:`OwnedDir.remove`).
Before anything is written into, resumed in or deleted from a folder, :func:`survey` sets what
is there against that record. A file the record does not list, a listed file whose content or
type changed since (a symlink planted in its place), a folder of the user's: all *foreign*, and
a folder holding anything foreign is refused (E502), ``--overwrite`` or not, naming a few of
those files. ``--overwrite`` (:meth:`OwnedDir.clear`) deletes exactly the listed files, never a
directory tree.

Nothing is ever lost to a kill: a file is listed *before* its temp file is written, the new
hash is added before the rename and the old one dropped after it, so whatever instant a process
dies the folder is still provably cascadec's own (``.NAME.PID.tmp`` of a listed file included).

Folders written before the record existed: one whose every entry is a name the older version
wrote for that kind of output, and whose content says so (a run manifest with its plan hash, a
report starting ``# cascadec report``...), is adopted; anything else is refused with the
command that would remove it by hand.

Every writer holds an exclusive lock while it writes: ``DIR/.cascadec.lock`` for a folder
(:class:`OutputLock`, a second writer fails at once naming the holder), the folder holding a
single-file output for :func:`file_lock` (a second writer waits its turn, then sees the first
one's file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cascadec.errors import CascadecError, RunDirError

RECORD = ".cascadec-owned.json"
LOCK_FILE = ".cascadec.lock"
RECORD_VERSION = 1
JOURNAL = "journal"  # a listed file appended while a run goes: owned by its name, not its hash
SHOWN = 5  # foreign files named in a refusal
FILE_LOCK_WAIT_S = 300.0  # how long a single-file writer waits for another one writing beside it
_TEMP = re.compile(r"^\.(?P<name>.+)\.\d+\.tmp$")  # atomic_write's temp file of NAME


# --- writing one file atomically -----------------------------------------------------------------
def atomic_write(
    path: str | Path,
    data: bytes | Callable[[Path], None],
    before_replace: Callable[[Path], None] | None = None,
) -> None:
    """Write ``data`` (bytes, or a writer called with the temp path) to ``path`` atomically.

    A temp file beside ``path`` (``.NAME.PID.tmp``), fsync'd, then ``os.replace``: a reader sees
    the old file or the new one, never half of one; a failure leaves no temp file behind. A
    symlink at ``path`` is replaced, never followed. ``before_replace`` sees the finished temp file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if callable(data):
            data(tmp)
        else:
            with open(tmp, "wb") as f:
                f.write(data)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def sha256_file(path: str | Path) -> str:
    """The sha256 of a regular file, never through a symlink (O_NOFOLLOW)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    return "sha256:" + h.hexdigest()


# --- locks ---------------------------------------------------------------------------------------
class OutputLock:
    """The exclusive lock of one output folder (``DIR/.cascadec.lock``), held until :meth:`release`.

    ``fcntl.flock``: the operating system drops it when the process dies, however it dies, so a
    stale lock never blocks; a second writer fails at once with a message naming the holder.
    """

    def __init__(self, out: str | Path, what: str = "run"):
        import fcntl

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirError(
                f"another cascadec {what} is writing here ({holder}); wait for it to "
                "finish or stop it" + (", then --resume" if what == "run" else ""),
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

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return f"pid {int(info['pid'])} on host {str(info['host'])[:64]}, since {str(info['since'])[:32]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


@contextlib.contextmanager
def file_lock(output: str | Path, wait_s: float = FILE_LOCK_WAIT_S) -> Iterator[None]:
    """Exclusive among cascadec writers of files in ``output``'s folder while the body runs.

    The lock is on the folder itself (no lock file is left beside the user's files); a second
    writer waits for the first (then finds its output, and replaces it only if told to), and
    refuses with E502 after ``wait_s`` seconds.
    """
    import fcntl

    folder = Path(output).parent
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield  # a folder that is not there yet: the write itself reports it
        return
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RunDirError(
                        f"another cascadec command has been writing beside this output for {wait_s:g}s",
                        where=output,
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


# --- kinds of output folders ---------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """One kind of output folder: what it is called and what an older cascadec wrote there."""

    kind: str  # "run", "report", "optimize"
    label: str  # "a cascadec run (or bank)"
    legacy_names: re.Pattern  # relative paths an older cascadec wrote for this kind
    legacy_check: Callable[[Path], bool]  # the content says it is that kind's (not a user's look-alike)
    journals: frozenset[str] = frozenset()
    log_dirs: tuple[tuple[str, re.Pattern], ...] = ()  # subfolders of worker logs: (name, file pattern)


def _json_has(path: Path, key: str) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and key in data


def _starts_with(path: Path, head: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(head.encode())) == head.encode()
    except OSError:
        return False


_LOG = re.compile(r"^[\w.-]+\.log$")  # vllm_offline: {model id, made safe}-{pid}-{ns}.log
RUN = Layout(
    "run",
    "a cascadec run (or bank)",
    re.compile(
        r"^(manifest\.json|plan\.json|samples\.jsonl|problems\.jsonl|problems\.parquet|samples\.parquet)$"
    ),
    lambda d: _json_has(d / "manifest.json", "plan_hash"),
    journals=frozenset({"samples.jsonl", "problems.jsonl"}),
    log_dirs=(("logs", _LOG),),
)
REPORT = Layout(
    "report",
    "a cascadec report",
    re.compile(r"^(report\.md|accuracy_cost\.png|tier_flow\.png|reliability\.png)$"),
    lambda d: (
        _starts_with(d / "report.md", "# cascadec report")
        or (not (d / "report.md").exists() and all(p.suffix == ".png" for p in d.iterdir()))
    ),
)
OPTIMIZE = Layout(
    "optimize",
    "an optimize frontier",
    re.compile(r"^(frontier\.json|frontier\.md|point-\d+\.yaml)$"),
    lambda d: _json_has(d / "frontier.json", "frontier"),
)
LAYOUTS = {layout.kind: layout for layout in (RUN, REPORT, OPTIMIZE)}


# --- what a folder holds -------------------------------------------------------------------------
@dataclass
class Survey:
    """A folder set against its ownership record."""

    folder: Path
    kind: str | None = None  # the record's kind (or the adopted legacy kind)
    files: dict[str, list[str] | str] = field(default_factory=dict)  # the record's files
    owned: list[str] = field(default_factory=list)  # existing files that are cascadec's output
    meta: list[str] = field(default_factory=list)  # its lock file, its record (and the record's temp)
    foreign: list[str] = field(default_factory=list)  # existing entries that are not
    legacy: bool = False  # adopted from an older version (no record on disk yet)
    record: bool = False  # the folder has a record

    @property
    def empty(self) -> bool:
        return not self.owned and not self.foreign

    def describe_foreign(self) -> str:
        shown = ", ".join(f if f.isprintable() else ascii(f) for f in self.foreign[:SHOWN])
        more = len(self.foreign) - SHOWN
        return shown + (f" and {more} more" if more > 0 else "")


def _entries(folder: Path) -> list[tuple[str, os.stat_result]]:
    """Every entry below ``folder`` (relative POSIX path, lstat), never through a symlink."""
    out: list[tuple[str, os.stat_result]] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(folder / rel if rel else folder) as it:
                items = list(it)
        except OSError as exc:
            raise RunDirError(f"cannot list: {exc.strerror or exc}", where=folder / rel) from None
        for item in items:
            sub = f"{rel}/{item.name}" if rel else item.name
            info = item.stat(follow_symlinks=False)
            out.append((sub, info))
            if stat.S_ISDIR(info.st_mode):
                stack.append(sub)
    return sorted(out)


def read_record(folder: Path) -> dict | None:
    """The folder's ownership record, None when it has none; E502 when it is damaged."""
    path = folder / RECORD
    if not os.path.lexists(path):
        return None
    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError("not a regular file")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not (
            isinstance(data, dict)
            and data.get("version") == RECORD_VERSION
            and data.get("kind") in LAYOUTS
            and isinstance(data.get("files"), dict)
            and all(
                isinstance(k, str)
                and ".." not in k.split("/")
                and not k.startswith("/")
                and (v == JOURNAL or (isinstance(v, list) and all(isinstance(h, str) for h in v)))
                for k, v in data["files"].items()
            )
        ):
            raise ValueError("not an ownership record")
    except (OSError, ValueError, RecursionError) as exc:
        raise RunDirError(
            f"its ownership record {RECORD} is damaged ({exc}); cascadec cannot tell its own files from "
            f"others, so it touches none: check the folder and remove it by hand",
            where=folder,
        ) from None
    return data


def survey(folder: str | Path, layout: Layout) -> Survey:
    """Set ``folder`` (which may not exist) against its record; nothing is changed."""
    folder = Path(folder)
    result = Survey(folder)
    if not os.path.lexists(folder):
        return result
    if not folder.is_dir():
        raise RunDirError("--out must be a directory, and this is a file", where=folder)
    entries = _entries(folder)
    record = read_record(folder)
    names = {rel for rel, _ in entries}
    if record is not None:
        result.record = True
        result.kind = record["kind"]
        result.files = dict(record["files"])
    else:
        kinds = [
            lay
            for lay in LAYOUTS.values()
            if names - {LOCK_FILE}
            and all(_legacy_entry(lay, rel, info) for rel, info in entries)
            and lay.legacy_check(folder)
        ]
        if kinds:  # written by an older cascadec: every entry is that kind's, by name and content
            lay = kinds[0]
            result.kind, result.legacy = lay.kind, True
            result.files = {
                rel: (JOURNAL if rel in lay.journals else [])
                for rel, info in entries
                if stat.S_ISREG(info.st_mode) and lay.legacy_names.match(rel)
            }
    lay = LAYOUTS[result.kind] if result.kind else None  # log folders count only in a recorded folder
    owned_dirs = {str(Path(rel).parent) for rel in result.files if "/" in rel}
    owned_dirs |= {d for d, _ in (lay.log_dirs if lay else ())}
    for rel, info in entries:
        if stat.S_ISDIR(info.st_mode):
            if rel in owned_dirs or any(o.startswith(rel + "/") for o in owned_dirs):
                continue
            result.foreign.append(rel + "/")
            continue
        why = _foreign(rel, info, result, lay)
        if why == "meta":
            result.meta.append(rel)
        elif why is None:
            result.owned.append(rel)
        else:
            result.foreign.append(f"{rel}{why}")
    # a foreign folder's contents are named once, as the folder
    dirs = [f for f in result.foreign if f.endswith("/")]
    result.foreign = [f for f in result.foreign if not any(f != d and f.startswith(d) for d in dirs)]
    return result


def _legacy_entry(lay: Layout, rel: str, info: os.stat_result) -> bool:
    if rel == LOCK_FILE:
        return True
    if stat.S_ISDIR(info.st_mode):
        return any(rel == d for d, _ in lay.log_dirs)
    if not stat.S_ISREG(info.st_mode):
        return False
    if lay.legacy_names.match(rel):
        return True
    m = _TEMP.match(Path(rel).name)
    if m and "/" not in rel and lay.legacy_names.match(m["name"]):
        return True
    return any(rel.startswith(d + "/") and pat.match(rel[len(d) + 1 :]) for d, pat in lay.log_dirs)


def _foreign(rel: str, info: os.stat_result, s: Survey, lay: Layout | None) -> str | None:
    """None when entry ``rel`` is cascadec's own output, "meta" for its lock and record, else why
    it is not (shown after its name)."""
    parent, _, name = rel.rpartition("/")
    if rel in (LOCK_FILE, RECORD) or (not parent and (m := _TEMP.match(name)) and m["name"] == RECORD):
        return "meta" if stat.S_ISREG(info.st_mode) else " (not a regular file)"
    if rel in s.files:
        if not stat.S_ISREG(info.st_mode):
            return " (a link or special file where cascadec wrote a file)"
        hashes = s.files[rel]
        if hashes == JOURNAL or (s.legacy and hashes == []):
            return None
        return None if sha256_file(s.folder / rel) in hashes else " (changed since cascadec wrote it)"
    m = _TEMP.match(name)
    if m and stat.S_ISREG(info.st_mode) and (f"{parent}/{m['name']}" if parent else m["name"]) in s.files:
        return None  # the temp file of a listed file, left by a kill
    for d, pat in lay.log_dirs if lay else ():
        if parent == d and stat.S_ISREG(info.st_mode) and pat.match(name):
            return None
    return ""


def refuse_foreign(s: Survey, layout: Layout, action: str) -> None:
    """E502 unless ``s`` holds nothing but ``layout``'s own files (or nothing at all)."""
    if s.foreign:
        raise RunDirError(
            f"--out is not empty and holds files cascadec did not write ({s.describe_foreign()}); "
            f"{action}: cascadec writes only into a new or empty folder or one holding nothing but its "
            "own files, and never deletes or replaces anything else, --overwrite or not. Move them "
            "away or choose another --out",
            where=s.folder,
        )
    if s.kind is not None and s.kind != layout.kind and s.owned:
        evidence = layout.kind in ("report", "optimize")
        raise RunDirError(
            f"--out holds {LAYOUTS[s.kind].label}, not {layout.label}"
            + ("; evidence never goes into a run or bank folder" if evidence and s.kind == "run" else "")
            + ": choose another --out",
            where=s.folder,
        )


# --- writing into an owned folder ----------------------------------------------------------------
class OwnedDir:
    """An output folder this process writes: checked, locked, and every file recorded.

    Construction refuses a folder holding anything foreign (E502), takes the folder's lock and
    writes the record (adopting an older version's folder). :meth:`write` and :meth:`journal`
    are how files get there; :meth:`release` drops the lock.
    """

    def __init__(self, folder: str | Path, layout: Layout, action: str | None = None):
        self.folder = Path(folder)
        self.layout = layout
        action = action or "nothing was written"
        refuse_foreign(survey(self.folder, layout), layout, action)  # before the folder is created
        self._lock: OutputLock | None = OutputLock(self.folder, layout.kind)
        try:
            s = survey(self.folder, layout)  # again, now that no other cascadec writer can change it
            refuse_foreign(s, layout, action)
            self.files: dict[str, list[str] | str] = dict(s.files)
            if s.legacy:  # an older version's folder: its files recorded as they are now
                for rel, hashes in list(self.files.items()):
                    if hashes != JOURNAL:
                        self.files[rel] = [sha256_file(self.folder / rel)]
            self._save()
            for rel in s.owned:  # temp files a killed writer left: under the lock, none is in use
                if _TEMP.match(rel.rpartition("/")[2]) and rel not in self.files:
                    (self.folder / rel).unlink(missing_ok=True)
        except BaseException:
            self.release()
            raise

    def _save(self) -> None:
        body = {
            "version": RECORD_VERSION,
            "kind": self.layout.kind,
            "files": dict(sorted(self.files.items())),
        }
        atomic_write(self.folder / RECORD, (json.dumps(body, indent=1) + "\n").encode())

    def write(self, rel: str, data: bytes | Callable[[Path], None]) -> Path:
        """Write ``rel`` atomically, recorded before the temp file exists and as soon as it is whole."""
        path = self.folder / rel
        if self.files.get(rel) == JOURNAL or rel not in self.files:
            self.files[rel] = []
            self._save()
        if "/" in rel:
            path.parent.mkdir(parents=True, exist_ok=True)

        def record(tmp: Path) -> None:
            new = sha256_file(tmp)
            old = self.files.get(rel)
            self.files[rel] = [*(old[-1:] if isinstance(old, list) else []), new]
            self._save()

        atomic_write(path, data, before_replace=record)
        hashes = self.files[rel]
        if isinstance(hashes, list) and len(hashes) > 1:
            self.files[rel] = hashes[-1:]
            self._save()
        return path

    def remove(self, rel: str) -> None:
        """Delete ``rel``, a file this folder's record lists (an earlier output no longer written)."""
        if rel not in self.files:
            raise RunDirError(f"{rel} is not listed as cascadec's own: not deleted", where=self.folder)
        (self.folder / rel).unlink(missing_ok=True)
        del self.files[rel]
        self._save()

    def journal(self, rel: str) -> Path:
        """``rel`` as an append-only file of this folder (listed by name), its path."""
        if self.files.get(rel) != JOURNAL:
            self.files[rel] = JOURNAL
            self._save()
        return self.folder / rel

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> OwnedDir:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def clear(folder: str | Path, layout: Layout, action: str) -> bool:
    """Delete every file cascadec wrote in ``folder`` (``--overwrite``); True if there was any.

    Refused (E502, nothing deleted) when the folder holds anything else, holds another kind of
    output, or another cascadec command is writing there. Only listed files, their temp files,
    the record and the lock go; the folder itself goes when that leaves it empty.
    """
    folder = Path(folder)
    s = survey(folder, layout)
    refuse_foreign(s, layout, action)
    if not s.owned:
        return False
    with OutputLock(folder, layout.kind):  # one still writing there holds the lock: refused
        s = survey(folder, layout)
        refuse_foreign(s, layout, action)
        for rel in [*s.owned, *sorted((m for m in s.meta if m != LOCK_FILE), key=lambda m: m == RECORD)]:
            (folder / rel).unlink(missing_ok=True)
        for rel, info in sorted(_entries(folder), reverse=True):  # owned subfolders, now empty
            if stat.S_ISDIR(info.st_mode):
                with contextlib.suppress(OSError):
                    (folder / rel).rmdir()
        (folder / LOCK_FILE).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return True


# --- single-file outputs -------------------------------------------------------------------------
def owning_folder(path: str | Path) -> tuple[Path, str] | None:
    """The cascadec output folder ``path`` would land in (itself or an ancestor), with its kind."""
    try:
        here = Path(path).absolute().parent
    except OSError:
        return None
    for folder in (here, *here.parents):
        try:
            record = read_record(folder)
        except CascadecError:
            return folder, "run"  # damaged: still not a place for other outputs
        if record is not None:
            return folder, record["kind"]
        if os.path.lexists(folder / LOCK_FILE) or RUN.legacy_check(folder):
            return folder, "run"
    return None


def refuse_link_or_owned(output: str | Path) -> None:
    """A single-file output is never a symlink (dangling or not) and never inside a cascadec folder."""
    out = Path(output)
    if out.is_symlink():
        raise CascadecError(
            "output is a symbolic link; cascadec never writes through one (it could point anywhere): "
            "remove the link or choose another path",
            code="E901",
            where=out,
        )
    owner = owning_folder(out)
    if owner is not None:
        folder, kind = owner
        raise RunDirError(
            f"this output would go into {LAYOUTS[kind].label} folder {folder}, which holds only what "
            "cascadec wrote there (evidence never goes into a run or bank folder): choose a path outside it",
            where=out,
        )
