"""The math-verify worker pool: a few ``verify_worker`` processes, each pair under a deadline.

Kept apart from :mod:`cascadec.runtime.equivalence` (what is equal, the cache, the budgets):
this module only moves pairs to worker processes and back, kills a worker stuck past its
deadline (a sympy call in C code ignores the worker's own alarm) and restarts it, and tells its
caller what each pair cost, so budgets can be charged.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum


class Verdict(StrEnum):
    EQUAL = "equal"
    DIFFERENT = "different"
    UNGRADED = "ungraded"  # the grader ran out of time (or the answer is too large to parse)


class Workers:
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

    def run(
        self,
        pairs: list[tuple[str, str]],
        timeout: int,
        skip: Callable[[int], bool] | None = None,
        charge: Callable[[int, float], None] | None = None,
    ) -> list[Verdict | None]:
        """Verdicts for ``pairs`` (gold, pred); a pair past its deadline or in a dead worker is UNGRADED.

        ``skip(i)`` is asked right before pair ``i`` is sent: True leaves it ungraded (None in
        the result, never sent); ``charge(i, seconds)`` is told what pair ``i`` cost.
        """
        results: list[Verdict | None] = [Verdict.UNGRADED] * len(pairs)
        todo = deque(range(len(pairs)))
        inflight: dict[int, tuple[int, float]] = {}
        sent: dict[int, float] = {}
        cap = timeout + self.MARGIN  # a fresh worker's import time is not the pair's cost

        def charged(i: int, seconds: float | None = None) -> None:
            took = time.monotonic() - sent.pop(i)
            if charge is not None:
                charge(i, min(took if seconds is None else seconds, cap))

        with selectors.DefaultSelector() as sel:
            while todo or inflight:
                for w in range(self.size):
                    if w in inflight or not todo:
                        continue
                    i = todo.popleft()
                    if skip is not None and skip(i):
                        results[i] = None
                        continue
                    proc = self._proc(w)
                    try:
                        proc.stdin.write(json.dumps([pairs[i][0], pairs[i][1], timeout]) + "\n")  # type: ignore[union-attr]
                        proc.stdin.flush()  # type: ignore[union-attr]
                    except OSError:
                        self._kill(w)
                        todo.appendleft(i)
                        continue
                    grace = self.STARTUP_GRACE if self.fresh[w] else 0.0
                    sent[i] = time.monotonic()
                    inflight[w] = (i, sent[i] + timeout + self.MARGIN + grace)
                    sel.register(proc.stdout, selectors.EVENT_READ, w)  # type: ignore[arg-type]
                wait = max(0.0, min(d for _, d in inflight.values()) - time.monotonic()) if inflight else 0
                for key, _ in sel.select(timeout=wait):
                    w = key.data
                    sel.unregister(key.fileobj)
                    line = key.fileobj.readline()  # type: ignore[union-attr]
                    i, _ = inflight.pop(w)
                    self.fresh[w] = False
                    try:  # "<verdict> <seconds>": the worker's own measure of the pair
                        verdict, seconds = line.split()
                        results[i] = Verdict(verdict)
                        charged(i, float(seconds))
                    except ValueError:  # the worker died: the pair is ungraded, the worker restarts
                        charged(i)
                        self._kill(w)
                now = time.monotonic()
                for w, (i, deadline) in list(inflight.items()):
                    if now >= deadline:
                        charged(i)
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
