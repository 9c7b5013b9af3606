"""A math-verify worker process: reads ``[gold, pred, timeout]`` JSON lines, answers a verdict.

The answer line is ``equal``, ``different`` or ``ungraded`` (the pair hit the timeout, or an
answer is too large to parse safely), then the seconds the pair took (what a per-problem grading
budget is charged; the worker's start-up, sympy's import, is no pair's cost). Grading is asymmetric, exactly as math-verify's
``verify(gold, pred)``: the gold's structure decides (a set gold accepts a tuple prediction, not
the other way round); callers that need symmetry (vote clustering) ask both directions.

Started by :mod:`cascadec.runtime.equivalence` as ``python -m cascadec.runtime.verify_worker``
rather than through ``multiprocessing``: no fork of a process that holds threads or an
inference engine, and no re-import of the caller's ``__main__``. Each pair runs in the main
thread under one ``SIGALRM`` deadline covering parsing and verification, so a slow sympy call
becomes ``ungraded`` instead of a silent "different"; a worker stuck in C code (a huge integer
power) ignores the alarm and is killed by the parent at its own deadline.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time

MAX_CHARS = 2_000  # longer answers are not parsed: no real answer is this long
EQUAL, DIFFERENT, UNGRADED = "equal", "different", "ungraded"


class _Deadline(BaseException):  # not an Exception: math-verify must not swallow it
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise _Deadline


@functools.lru_cache(maxsize=4096)
def _parse(answer: str):
    """Parsed once per worker: a vote compares each answer with several others."""
    from math_verify import parse

    return parse("\\boxed{" + answer + "}", parsing_timeout=None)


def verify_pair(gold: str, pred: str, timeout: int) -> str:
    """``equal`` / ``different`` / ``ungraded`` for math-verify's ``verify(gold, pred)``."""
    from math_verify import verify

    if len(gold) > MAX_CHARS or len(pred) > MAX_CHARS:
        return UNGRADED
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(timeout)))
    try:
        pg, pp = _parse(gold), _parse(pred)
        if not pg or not pp:
            return DIFFERENT
        return EQUAL if verify(pg, pp, timeout_seconds=None) else DIFFERENT
    except _Deadline:
        return UNGRADED
    except RecursionError:
        return UNGRADED
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def main() -> None:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answer channel
    import math_verify  # noqa: F401  (pay the sympy import before the first pair)

    for line in sys.stdin:
        start = time.monotonic()
        try:
            gold, pred, timeout = json.loads(line)
            result = verify_pair(str(gold), str(pred), int(timeout))
        except _Deadline:
            result = UNGRADED
        except Exception:  # one bad pair must not kill the worker
            result = DIFFERENT
        channel.write(f"{result} {time.monotonic() - start:.6f}\n")
        channel.flush()


if __name__ == "__main__":
    main()
