"""Are two answers the same? Asymmetric grading as math-verify, conservative clustering.

- **Grading** is ``verify(gold, pred)`` as in math-verify: asymmetric (a set gold ``{1,3}``
  accepts the prediction ``(3,1)``; a bare ``1`` does not match the gold ``2x+z=1``).
- **Clustering** for a vote (:meth:`Equivalence.same`) is conservative: two answers are one
  cluster only when each is equal to the other.
- The verdict is tri-state (:class:`Verdict`): a pair that exceeds the timeout, or an answer too
  large to parse, is ``UNGRADED`` — counted in :attr:`Equivalence.ungraded`, never silently
  "different" — and a hung worker is killed and replaced, so no input can hang a run.

Shortcuts decide most pairs without sympy, and each is provably one (never rules otherwise than
math-verify would): identical normalised strings are equal; two plain numbers (``7.5``,
``15/2``, ``\\frac{15}{2}``) of exactly the same value are equal; two exact rationals (no decimal
point) of different value are different (math-verify compares them exactly); two plain numbers
below 10^6 that differ by more than 10^-5 are different (math-verify rounds floats to 6 places,
so it cannot close that gap). Everything else (decimals that math-verify rounds, ``4+4/9``, ``1,-2``, symbols) goes
to math-verify, which runs in a few worker processes (:mod:`cascadec.runtime.verify_worker`).
One documented policy sits on top: two clock times (``4:30 p.m.`` → ``16:30``) compare as times,
not as the ratio math-verify would read. Verdicts are cached per ordered pair for the process.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from enum import StrEnum
from fractions import Fraction
from typing import Literal

from cascadec.runtime.answers import normalize, numeric_value, read_answer

Mode = Literal["math", "exact"]
_FLOAT_SAFE = Fraction(10**6)  # below this, a float keeps well over 6 decimals of 15 digits
_FLOAT_GAP = Fraction(1, 10**5)  # 10× the rounding step: no rounding mode closes this gap
_TIME = re.compile(r"^\d{1,2}:\d{2}$")


class Verdict(StrEnum):
    EQUAL = "equal"
    DIFFERENT = "different"
    UNGRADED = "ungraded"  # the grader ran out of time (or the answer is too large to parse)


CACHE_LIMIT = 2_000_000  # verdicts kept per process (a few hundred MB at most)
_cache: dict[tuple[str, str], Verdict] = {}
_pool: _Workers | None = None
_pool_lock = threading.Lock()
_run_lock = threading.Lock()


def _remember(key: tuple[str, str], verdict: Verdict) -> None:
    if len(_cache) >= CACHE_LIMIT:  # a bounded memory: forget everything, recompute on demand
        _cache.clear()
    _cache[key] = verdict


@functools.lru_cache(maxsize=1 << 16)
def _normal(answer: str) -> str:
    return normalize(answer)


def fast_verdict(gold: str, pred: str) -> Verdict | None:
    """EQUAL/DIFFERENT when decidable without sympy (in agreement with math-verify), else None."""
    if gold == pred:
        return Verdict.EQUAL
    if _TIME.match(gold) and _TIME.match(pred):
        return Verdict.DIFFERENT  # normalised times: equal only when identical (policy)
    vg, vp = numeric_value(gold), numeric_value(pred)
    if vg is None or vp is None or "e" in (gold + pred).lower():
        return None
    if vg == vp:
        return Verdict.EQUAL
    if "." not in gold + pred:
        return Verdict.DIFFERENT  # two exact rationals: math-verify compares them exactly
    if max(abs(vg), abs(vp)) < _FLOAT_SAFE and abs(vg - vp) > _FLOAT_GAP:
        return Verdict.DIFFERENT  # far apart even after math-verify rounds floats to 6 places
    return None


def fast_equal(a: str, b: str) -> bool | None:
    """Symmetric shortcut for clustering: True/False when both directions are decided, else None."""
    ab, ba = fast_verdict(a, b), fast_verdict(b, a)
    if ab is None or ba is None:
        return None
    return ab is Verdict.EQUAL and ba is Verdict.EQUAL


class _Workers:
    """A few ``verify_worker`` processes, one pair in flight each, killed when past deadline."""

    STARTUP_GRACE = 60.0  # seconds a fresh worker may take to import sympy
    MARGIN = 2.0  # seconds past the pair timeout (the worker's own alarm) before it counts as hung

    COMMAND = (sys.executable, "-m", "cascadec.runtime.verify_worker")

    def __init__(self, size: int, command: tuple[str, ...] | None = None):
        self.size = size
        self.command = list(command or self.COMMAND)
        self.procs: list[subprocess.Popen | None] = [None] * size
        self.fresh = [True] * size

    def _proc(self, w: int) -> subprocess.Popen:
        proc = self.procs[w]
        if proc is None or proc.poll() is not None:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                close_fds=True,
            )
            self.procs[w] = proc
            self.fresh[w] = True
        return proc

    def _kill(self, w: int) -> None:
        proc = self.procs[w]
        if proc is not None:
            proc.kill()
            proc.wait()
        self.procs[w] = None

    def start(self) -> None:
        for w in range(self.size):
            self._proc(w)

    def run(self, pairs: list[tuple[str, str]], timeout: int) -> list[Verdict]:
        """Verdicts for ``pairs`` (gold, pred); a pair past its deadline or in a dead worker is UNGRADED."""
        results = [Verdict.UNGRADED] * len(pairs)
        todo = deque(range(len(pairs)))
        inflight: dict[int, tuple[int, float]] = {}
        with selectors.DefaultSelector() as sel:
            while todo or inflight:
                for w in range(self.size):
                    if w in inflight or not todo:
                        continue
                    i = todo.popleft()
                    proc = self._proc(w)
                    try:
                        proc.stdin.write(json.dumps([pairs[i][0], pairs[i][1], timeout]) + "\n")  # type: ignore[union-attr]
                        proc.stdin.flush()  # type: ignore[union-attr]
                    except OSError:
                        self._kill(w)
                        todo.appendleft(i)
                        continue
                    grace = self.STARTUP_GRACE if self.fresh[w] else 0.0
                    inflight[w] = (i, time.monotonic() + timeout + self.MARGIN + grace)
                    sel.register(proc.stdout, selectors.EVENT_READ, w)  # type: ignore[arg-type]
                wait = max(0.0, min(d for _, d in inflight.values()) - time.monotonic()) if inflight else 0
                for key, _ in sel.select(timeout=wait):
                    w = key.data
                    sel.unregister(key.fileobj)
                    line = key.fileobj.readline()  # type: ignore[union-attr]
                    i, _ = inflight.pop(w)
                    self.fresh[w] = False
                    try:
                        results[i] = Verdict(line.strip())
                    except ValueError:  # the worker died: the pair is ungraded, the worker restarts
                        self._kill(w)
                now = time.monotonic()
                for w, (_i, deadline) in list(inflight.items()):
                    if now >= deadline:
                        sel.unregister(self.procs[w].stdout)  # type: ignore[union-attr,arg-type]
                        self._kill(w)
                        del inflight[w]
        return results

    def close(self) -> None:
        for w, proc in enumerate(self.procs):
            if proc is not None:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]
                    proc.wait(timeout=2)
                except (OSError, subprocess.TimeoutExpired):
                    self._kill(w)
            self.procs[w] = None


def _get_pool() -> _Workers:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Workers(max(1, min(4, os.cpu_count() or 2)))
        return _pool


def shutdown() -> None:
    """Stop the math-verify workers (done automatically at exit)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None


atexit.register(shutdown)


class Equivalence:
    """Answer grading and clustering with a cache; ``mode="exact"`` never starts math-verify.

    Inputs are answers (what :func:`cascadec.runtime.answers.extract_answer` returns); raw
    answers such as ``10\\text{ units}`` are normalised first, so both work.
    """

    def __init__(self, mode: Mode = "math", timeout: float = 5.0):
        if mode not in ("math", "exact"):
            raise ValueError(f"equivalence mode must be 'math' or 'exact', got {mode!r}")
        self.mode = mode
        self.timeout = max(1, int(round(timeout)))
        self.pairs_verified = 0  # pairs math-verify was asked about
        self.ungraded = 0  # of those, pairs that ran out of time or were too large

    @property
    def timeouts(self) -> int:
        """Pairs left ungraded (kept under this name for readers of run summaries)."""
        return self.ungraded

    pairs_timed_out = timeouts

    def verify(self, gold: str, pred: str) -> Verdict:
        """math-verify's ``verify(gold, pred)``: asymmetric, tri-state."""
        if self.mode == "exact":  # shortcuts only; the cache may hold math-verify's verdicts
            return fast_verdict(_normal(gold), _normal(pred)) or Verdict.DIFFERENT
        known = _cache.get((gold, pred))
        if known is not None:
            return known
        g, p = _normal(gold), _normal(pred)
        verdict = fast_verdict(g, p)
        if verdict is None:
            if (g, p) not in _cache:
                self._decide([(g, p)])
            verdict = _cache[(g, p)]
        _remember((gold, pred), verdict)
        return verdict

    def was_ungraded(self, a: str, b: str) -> bool:
        """Whether the pair (either way) was left ungraded; looks at the cache only, never grades."""
        if self.mode == "exact":
            return False
        x, y = _normal(a), _normal(b)
        return Verdict.UNGRADED in (
            _cache.get((a, b)),
            _cache.get((b, a)),
            _cache.get((x, y)),
            _cache.get((y, x)),
        )

    def grade(self, gold: str, pred: str | None) -> bool | None:
        """Is ``pred`` right? True/False, or None when the grader could not decide (ungraded)."""
        if pred is None:
            return False
        verdict = self.verify(gold, pred)
        return None if verdict is Verdict.UNGRADED else verdict is Verdict.EQUAL

    def same(self, a: str, b: str) -> bool:
        """Same vote cluster: equal in both directions (an ungraded pair is not the same)."""
        return self.verify(a, b) is Verdict.EQUAL and self.verify(b, a) is Verdict.EQUAL

    def prepare(self, pairs: Iterable[tuple[str, str]], both_ways: bool = False) -> None:
        """Decide every (gold, pred) pair that needs math-verify at once, in parallel (fills the cache).

        ``both_ways`` also prepares (pred, gold), as clustering needs.
        """
        if self.mode == "exact":
            return
        todo: set[tuple[str, str]] = set()
        for a, b in pairs:
            a, b = _normal(a), _normal(b)
            for key in ((a, b), (b, a)) if both_ways else ((a, b),):
                if key not in _cache and fast_verdict(*key) is None:
                    todo.add(key)
        if todo:
            self._decide(sorted(todo))

    def _decide(self, todo: list[tuple[str, str]]) -> None:
        with _run_lock:  # one batch at a time through the shared workers
            verdicts = _get_pool().run(todo, self.timeout)
        self.pairs_verified += len(todo)
        self.ungraded += sum(v is Verdict.UNGRADED for v in verdicts)
        for key, verdict in zip(todo, verdicts, strict=True):
            _remember(key, verdict)

    def warm_up(self) -> None:
        """Start the pool now (e.g. while a model loads) so the first vote does not wait."""
        if self.mode == "math":
            _get_pool().start()


def grade_texts(gold: str, completion: str, equivalence: Equivalence | None = None) -> bool | None:
    """Grade a completion (or a bare answer) against a gold cell (bare, GSM8K or MATH solution).

    True/False, or None when the gold has no answer or the grader could not decide.
    """
    g, p = read_answer(gold), read_answer(completion)
    if g is None:
        return None
    return (equivalence or Equivalence()).grade(g, p)
