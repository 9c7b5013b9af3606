"""Are two answers the same? A cheap exact/numeric test first, math-verify only when needed.

Most pairs in a vote are decided without sympy: equal normalised strings are equal, two plain
numbers (``7.5``, ``15/2``, ``\\frac{15}{2}``) are compared exactly (with a 1e-4 relative
tolerance once a decimal is involved, as the Qwen2.5-Math evaluation does). Only pairs with
symbols go to math-verify, which runs in a few shared worker processes
(:mod:`cascadec.runtime.verify_worker`): sympy can hang on adversarial input, so each pair gets
a timeout (a pair that times out counts as *different*) and a worker past its deadline is
killed and replaced. Results are cached on the unordered pair, for the whole process.
"""

from __future__ import annotations

import atexit
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
from fractions import Fraction
from typing import Literal

from cascadec.runtime.answers import numeric_value

Mode = Literal["math", "exact"]
REL_TOL = Fraction(1, 10_000)
_PLAIN = re.compile(r"^[0-9.,+\-/ ]*$")

_cache: dict[tuple[str, str], bool] = {}
_pool: _Workers | None = None
_pool_lock = threading.Lock()
_run_lock = threading.Lock()


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def fast_equal(a: str, b: str) -> bool | None:
    """True/False when decidable without sympy, None when math-verify must decide."""
    if a == b:
        return True
    va, vb = numeric_value(a), numeric_value(b)
    if va is not None and vb is not None:
        if va == vb:
            return True
        if (va.denominator == 1 and vb.denominator == 1) or "." not in a + b:
            return False  # integers and exact fractions: no tolerance
        return abs(va - vb) <= REL_TOL * max(1, abs(va), abs(vb))
    if _PLAIN.match(a) and _PLAIN.match(b):
        return False  # digits only, not the same number: no symbol for sympy to see through
    return None


class _Workers:
    """A few ``verify_worker`` processes, one pair in flight each, killed when past deadline."""

    STARTUP_GRACE = 60.0  # seconds a fresh worker may take to import sympy
    MARGIN = 5.0  # seconds past 3 × the pair timeout before a worker counts as hung

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

    def run(self, pairs: list[tuple[str, str]], timeout: int) -> tuple[list[bool], int]:
        """Verdicts for ``pairs`` (False for a pair that timed out) and the number of time-outs."""
        results = [False] * len(pairs)
        todo = deque(range(len(pairs)))
        inflight: dict[int, tuple[int, float]] = {}
        timed_out = 0
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
                    inflight[w] = (i, time.monotonic() + 3 * timeout + self.MARGIN + grace)
                    sel.register(proc.stdout, selectors.EVENT_READ, w)  # type: ignore[arg-type]
                wait = max(0.0, min(d for _, d in inflight.values()) - time.monotonic()) if inflight else 0
                for key, _ in sel.select(timeout=wait):
                    w = key.data
                    sel.unregister(key.fileobj)
                    line = key.fileobj.readline()  # type: ignore[union-attr]
                    i, _ = inflight.pop(w)
                    self.fresh[w] = False
                    if line.strip() in ("true", "false"):
                        results[i] = line.strip() == "true"
                    else:  # the worker died: the pair counts as different, the worker restarts
                        self._kill(w)
                now = time.monotonic()
                for w, (_i, deadline) in list(inflight.items()):
                    if now >= deadline:
                        sel.unregister(self.procs[w].stdout)  # type: ignore[union-attr,arg-type]
                        self._kill(w)
                        del inflight[w]
                        timed_out += 1
        return results, timed_out

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
    """Answer equivalence with a cache; ``mode="exact"`` never starts math-verify."""

    def __init__(self, mode: Mode = "math", timeout: float = 5.0):
        if mode not in ("math", "exact"):
            raise ValueError(f"equivalence mode must be 'math' or 'exact', got {mode!r}")
        self.mode = mode
        self.timeout = max(1, int(round(timeout)))
        self.pairs_verified = 0
        self.pairs_timed_out = 0

    def same(self, a: str, b: str) -> bool:
        quick = fast_equal(a, b)
        if quick is not None:
            return quick
        if self.mode == "exact":
            return False
        key = _key(a, b)
        if key not in _cache:
            self.prepare([key])
        return _cache[key]

    def prepare(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Decide every pair that needs math-verify at once, in parallel (fills the cache)."""
        if self.mode == "exact":
            return
        todo = sorted(
            {_key(a, b) for a, b in pairs if a != b and _key(a, b) not in _cache and fast_equal(a, b) is None}
        )
        if not todo:
            return
        with _run_lock:  # one batch at a time through the shared workers
            verdicts, timed_out = _get_pool().run(todo, self.timeout)
        self.pairs_verified += len(todo)
        self.pairs_timed_out += timed_out
        for key, verdict in zip(todo, verdicts, strict=True):
            _cache[key] = verdict

    def warm_up(self) -> None:
        """Start the pool now (e.g. while a model loads) so the first vote does not wait."""
        if self.mode == "math":
            _get_pool().start()
