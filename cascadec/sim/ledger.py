"""The calibration ledger: every ``calibrate`` on a bank, recorded beside it.

A certificate's guarantee ("with probability >= 1 - delta the chosen cascade loses at most
epsilon") holds for *one* look at the held-out problems. Calibrating again on the same bank —
another split seed, another ``--calibration-fraction``, another target — until one certifies
is a second look, and reporting the one that certified is only covered by a union bound over
every look: with looks at levels delta_1..delta_m, the reported certificate holds with
probability >= 1 - (delta_1 + ... + delta_m) (Bonferroni). Nothing in a single run can know
about the others, so each calibrate appends one line to the ledger and reads it first.

Where: a sibling file of the bank, ``BANK.calibrations.jsonl`` — ``runs/bank`` (a bank folder)
gets ``runs/bank.calibrations.jsonl``, ``my_bank.parquet`` gets ``my_bank.parquet.calibrations.jsonl``,
and a bank named by a file inside a cascadec folder (``runs/eval/samples.parquet``) uses that
folder's sibling. Never inside the bank folder: a bank folder holds only what cascadec wrote
there when it was built (``cascadec.outputs``), and its hash must not change when it is
calibrated on. ``calibrate --ledger FILE`` puts it elsewhere (a read-only bank).

A look counts when it used the same bank *content* (its sha256, whatever the path), whatever
the split, data file, ``--limit`` or target: every split of one bank's problems overlaps the
held-out problems of the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cascadec.errors import CascadecError

SUFFIX = ".calibrations.jsonl"
MAX_LEDGER_BYTES = 64 << 20


def ledger_path(bank: str | Path) -> Path:
    """The ledger beside a bank (see the module docstring)."""
    from cascadec.outputs import owning_folder

    path = Path(bank).absolute()
    if path.is_file():
        owner = owning_folder(path)
        if owner is not None:
            path = owner[0]
    return path.with_name(path.name + SUFFIX)


def space_hash(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def problems_hash(ids: list[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


@dataclass(frozen=True)
class Looks:
    """The looks recorded before this one on the same bank, and what they mean for this one."""

    ledger: Path
    previous: list[dict]
    delta: float  # this look's level

    @property
    def count(self) -> int:
        """Looks at these held-out problems, this one included."""
        return len(self.previous) + 1

    @property
    def family_delta(self) -> float:
        """Bonferroni over every recorded look: the sum of their levels, this one's included."""
        return min(1.0, self.delta + sum(float(e.get("delta") or 0.0) for e in self.previous))

    def certificate(self, *, this_one: bool = True) -> dict:
        """What a certificate (or an E700 report) says of the looks; ``this_one``: whether this
        calibrate looked at the held-out problems (not when it stopped on the calibration split)."""
        family = self.family_delta if this_one else max(0.0, self.family_delta - self.delta)
        return {
            "count": self.count if this_one else len(self.previous),
            "ledger": self.ledger.name,  # beside the bank (a certificate carries no local path)
            "family_delta": round(family, 6),
            "corrected_confidence": round(1 - family, 6),
            "previous": [
                {k: e.get(k) for k in ("time", "split_seed", "calibration_fraction", "target", "outcome")}
                for e in self.previous[-20:]
            ],
        }

    def warning(self) -> str | None:
        if not self.previous:
            return None
        splits = ", ".join(
            f"seed {e.get('split_seed')} fraction {e.get('calibration_fraction')} → {e.get('outcome')}"
            for e in self.previous[-5:]
        )
        more = f" (and {len(self.previous) - 5} earlier)" if len(self.previous) > 5 else ""
        corrected = max(0.0, 1 - self.family_delta)
        return (
            f"these held-out problems have now been looked at {self.count} times (earlier calibrates on "
            f"this bank: {splits}{more}; ledger {self.ledger}). The guarantee is for one look: by "
            f"Bonferroni over the recorded looks this certificate holds with confidence >= "
            f"{100 * corrected:.4g}% (1 - the sum of their deltas), not {100 * (1 - self.delta):.4g}%. "
            "Report that level, or calibrate on problems no earlier look has seen (a fresh bank)."
        )


def read_looks(ledger: Path, bank_hash: str, delta: float) -> Looks:
    """The looks recorded on a bank of this content. A damaged line is an error, never skipped."""
    previous: list[dict] = []
    if ledger.is_symlink():
        raise CascadecError(
            "the calibration ledger is a symbolic link; cascadec never writes through one",
            code="E901",
            where=ledger,
        )
    if ledger.exists():
        if not ledger.is_file() or ledger.stat().st_size > MAX_LEDGER_BYTES:
            raise CascadecError(
                "the calibration ledger is not a readable ledger file", code="E901", where=ledger
            )
        for number, line in enumerate(ledger.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise CascadecError(
                    f"line {number} of the calibration ledger is not JSON: the record of earlier looks "
                    "is damaged; repair or move it (looks are never forgotten silently)",
                    code="E901",
                    where=ledger,
                ) from None
            if not isinstance(entry, dict) or entry.get("bank_hash") != bank_hash:
                continue
            if entry.get("held_out_looked", True):  # an E700 on the calibration split never saw them
                previous.append(entry)
    return Looks(ledger, previous, delta)


def record_look(ledger: Path, entry: dict) -> None:
    """Append one look (one JSON line) under the folder's file lock; never through a symlink."""
    from cascadec.outputs import file_lock, refuse_link_or_owned

    refuse_link_or_owned(ledger)
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}, sort_keys=True) + "\n"
    with file_lock(ledger):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(ledger, flags, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            with contextlib.suppress(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)
