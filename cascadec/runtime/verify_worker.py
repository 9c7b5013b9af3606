"""A math-verify worker process: reads ``[a, b, timeout]`` JSON lines, answers ``true``/``false``.

Started by :mod:`cascadec.runtime.equivalence` as ``python -m cascadec.runtime.verify_worker``
rather than through ``multiprocessing``: no fork of a process that holds threads or an
inference engine, and no re-import of the caller's ``__main__`` (scripts without an
``if __name__ == "__main__"`` guard and notebooks both work). It runs each pair in its main
thread, where math-verify's alarm-based timeout works; the parent kills a worker that still
hangs past its own deadline.
"""

from __future__ import annotations

import json
import os
import sys


def verify_pair(a: str, b: str, timeout: int) -> bool:
    from math_verify import parse, verify

    pa = parse("\\boxed{" + a + "}", parsing_timeout=timeout)
    pb = parse("\\boxed{" + b + "}", parsing_timeout=timeout)
    if not pa or not pb:
        return False
    return bool(verify(pa, pb, timeout_seconds=timeout) or verify(pb, pa, timeout_seconds=timeout))


def main() -> None:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answer channel
    import math_verify  # noqa: F401  (pay the sympy import before the first pair)

    for line in sys.stdin:
        try:
            a, b, timeout = json.loads(line)
            result = verify_pair(str(a), str(b), int(timeout))
        except Exception:  # one bad pair must not kill the worker
            result = False
        channel.write("true\n" if result else "false\n")
        channel.flush()


if __name__ == "__main__":
    main()
