"""Are two answers the same? Asymmetric grading as math-verify, conservative clustering.

- **Grading** is ``verify(gold, pred)`` as in math-verify: asymmetric (a set gold ``{1,3}``
  accepts the prediction ``(3,1)``; a bare ``1`` does not match the gold ``2x+z=1``).
- **Clustering** for a vote (:meth:`Equivalence.same`) is conservative: two answers are one
  cluster only when each is equal to the other.
- The verdict is tri-state (:class:`Verdict`): a pair that exceeds the timeout, or an answer too
  large to parse, is ``UNGRADED`` — counted in :attr:`Equivalence.ungraded`, never silently
  "different" — and a hung worker is killed and replaced, so no input can hang a run.
- **A grading budget per problem** bounds what adversarial answers (power towers, each pair
  seconds of sympy) can cost one problem: pairs prepared for an *owner* (a problem under a
  strategy, :meth:`Equivalence.prepare_owned`) charge their grading seconds to it; once an
  owner has spent ``budget`` seconds its remaining pairs are not graded but left ``UNGRADED``
  (counted in :attr:`Equivalence.pairs_over_budget`, the owner in :attr:`over_budget`). A
  problem's grading therefore ends within ``budget`` plus one pair timeout per worker.

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
import os
import re
import threading
from collections.abc import Hashable, Iterable
from fractions import Fraction
from itertools import zip_longest

from cascadec.core.policies import EquivalenceMode
from cascadec.runtime.answers import normalize, numeric_value, read_answer
from cascadec.runtime.verify_pool import Verdict, Workers

Mode = EquivalenceMode
_FLOAT_SAFE = Fraction(10**6)  # below this, a float keeps well over 6 decimals of 15 digits
_FLOAT_GAP = Fraction(1, 10**5)  # 10× the rounding step: no rounding mode closes this gap
_TIME = re.compile(r"^\d{1,2}:\d{2}$")


DEFAULT_TIMEOUT = 5.0  # seconds per pair (math-verify's own default)
DEFAULT_BUDGET = 30.0  # seconds of grading per problem (``cascadec run --grading-budget``)
CACHE_LIMIT = 2_000_000  # verdicts kept per process (a few hundred MB at most)
_cache: dict[tuple[str, str], Verdict] = {}
_pool: Workers | None = None
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


def _get_pool() -> Workers:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Workers(max(1, min(4, os.cpu_count() or 2)))
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
    answers such as ``10\\text{ units}`` are normalised first, so both work. ``timeout`` bounds
    one pair, ``budget`` (seconds, None for none) one owner's pairs (see the module docstring).
    """

    def __init__(
        self,
        mode: Mode | str = EquivalenceMode.MATH,
        timeout: float = DEFAULT_TIMEOUT,
        budget: float | None = DEFAULT_BUDGET,
    ):
        if mode not in tuple(EquivalenceMode):
            raise ValueError(f"equivalence mode must be 'math' or 'exact', got {mode!r}")
        if budget is not None and not 0 < budget < float("inf"):
            raise ValueError(f"grading budget must be a positive number of seconds, got {budget!r}")
        self.mode = EquivalenceMode(mode)
        self.timeout = max(1, int(round(timeout)))
        self.budget = budget
        self.pairs_verified = 0  # pairs math-verify was asked about
        self.ungraded = 0  # of those, pairs that ran out of time or were too large
        self.pairs_over_budget = 0  # pairs left ungraded because their owners' budgets were spent
        self.spent: dict[Hashable, float] = {}  # grading seconds charged to each owner
        self.over_budget: set[Hashable] = set()  # owners that had pairs left ungraded by the budget
        self._skipped: set[tuple[str, str]] = set()  # normalised pairs a budget left ungraded

    @property
    def timeouts(self) -> int:
        """Pairs left ungraded (kept under this name for readers of run summaries)."""
        return self.ungraded

    pairs_timed_out = timeouts

    def verify(self, gold: str, pred: str) -> Verdict:
        """math-verify's ``verify(gold, pred)``: asymmetric, tri-state."""
        if self.mode == EquivalenceMode.EXACT:  # shortcuts only; the cache may hold math-verify's verdicts
            return fast_verdict(_normal(gold), _normal(pred)) or Verdict.DIFFERENT
        known = _cache.get((gold, pred))
        if known is not None:
            return known
        g, p = _normal(gold), _normal(pred)
        verdict = fast_verdict(g, p)
        if verdict is None:
            if (g, p) not in _cache:
                if (g, p) in self._skipped:
                    return Verdict.UNGRADED  # over budget: stays ungraded, never graded unbounded
                self._decide([(g, p)])
            verdict = _cache[(g, p)]
        _remember((gold, pred), verdict)
        return verdict

    def was_ungraded(self, a: str, b: str) -> bool:
        """Whether the pair (either way) was left ungraded; looks at the cache only, never grades."""
        if self.mode == EquivalenceMode.EXACT:
            return False
        x, y = _normal(a), _normal(b)
        if (x, y) in self._skipped or (y, x) in self._skipped:
            return True
        return Verdict.UNGRADED in (
            _cache.get((a, b)),
            _cache.get((b, a)),
            _cache.get((x, y)),
            _cache.get((y, x)),
        )

    def is_over_budget(self, owner: Hashable) -> bool:
        """Whether ``owner`` had pairs left ungraded because its grading budget was spent."""
        return owner in self.over_budget

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

        ``both_ways`` also prepares (pred, gold), as clustering needs. No owner is charged; a
        pair a budget left ungraded stays so.
        """
        self.prepare_owned([(None, pairs)], both_ways)

    def prepare_owned(
        self, groups: Iterable[tuple[Hashable | None, Iterable[tuple[str, str]]]], both_ways: bool = False
    ) -> None:
        """:meth:`prepare` for pairs grouped by owner, each owner's grading within the budget.

        A pair shared by several owners is graded once, charged to each of them, and skipped
        only when every one of them is out of budget. Owners take turns (one pair each, round
        robin), so a problem full of slow pairs delays the others' by at most its budget.
        """
        if self.mode == EquivalenceMode.EXACT:
            return
        owners: dict[tuple[str, str], set[Hashable]] = {}
        queues: list[list[tuple[str, str]]] = []
        for owner, pairs in groups:
            queue = []
            for a, b in pairs:
                a, b = _normal(a), _normal(b)
                for key in ((a, b), (b, a)) if both_ways else ((a, b),):
                    if key in _cache or (owner is None and key in self._skipped):
                        continue
                    if fast_verdict(*key) is not None:
                        continue
                    if key not in owners:
                        owners[key] = set()
                        queue.append(key)
                    if owner is not None:
                        owners[key].add(owner)
            queues.append(sorted(queue))
        todo = [key for turn in zip_longest(*queues) for key in turn if key is not None]
        if todo:
            self._decide(todo, owners)

    def _decide(
        self, todo: list[tuple[str, str]], owners: dict[tuple[str, str], set[Hashable]] | None = None
    ) -> None:
        owners = owners or {}
        budget = self.budget

        def skip(i: int) -> bool:
            mine = owners.get(todo[i])
            return bool(mine) and budget is not None and all(self.spent.get(o, 0.0) >= budget for o in mine)

        def charge(i: int, seconds: float) -> None:
            for o in owners.get(todo[i], ()):
                self.spent[o] = self.spent.get(o, 0.0) + seconds

        with _run_lock:  # one batch at a time through the shared workers
            verdicts = _get_pool().run(todo, self.timeout, skip, charge)
        for key, verdict in zip(todo, verdicts, strict=True):
            if verdict is None:
                self._skipped.add(key)
                self.pairs_over_budget += 1
                self.over_budget |= owners[key]
                continue
            self._skipped.discard(key)
            self.pairs_verified += 1
            self.ungraded += verdict is Verdict.UNGRADED
            _remember(key, verdict)

    def warm_up(self) -> None:
        """Start the pool now (e.g. while a model loads) so the first vote does not wait."""
        if self.mode == EquivalenceMode.MATH:
            _get_pool().start()


def grade_texts(gold: str, completion: str, equivalence: Equivalence | None = None) -> bool | None:
    """Grade a completion (or a bare answer) against a gold cell (bare, GSM8K or MATH solution).

    True/False, or None when the gold has no answer or the grader could not decide.
    """
    g, p = read_answer(gold), read_answer(completion)
    if g is None:
        return None
    return (equivalence or Equivalence()).grade(g, p)
