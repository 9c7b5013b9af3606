"""Laws of answer equivalence, on generated numbers, fractions, tuples and intervals.

- reflexive: an answer equals every spelling of itself (spaces, ``\\left(``, ``\\dfrac``, ``$``);
- symmetric where the kinds match: ``verify(a, b) == verify(b, a)`` for two numbers, two
  fractions, two tuples, two intervals (asymmetry is reserved for a set gold vs a tuple, or an
  equation vs its value, as in math-verify); clustering (``same``) is symmetric always;
- normalisation is idempotent;
- pathological inputs end within the grader's timeout and are counted as ungraded.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadec.runtime.answers import extract_answer, normalize
from cascadec.runtime.equivalence import Equivalence, Verdict

EQ = Equivalence(timeout=5)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ints = st.integers(-999, 999)
decimals = st.decimals(min_value=-100, max_value=100, places=3, allow_nan=False).map(str)
fractions = st.tuples(ints, st.integers(1, 99)).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}")
scalars = st.one_of(ints.map(str), decimals, fractions)
tuples = st.lists(scalars, min_size=2, max_size=3).map(lambda xs: "(" + ", ".join(xs) + ")")
intervals = st.tuples(ints, st.integers(1, 50), st.sampled_from("[("), st.sampled_from("])")).map(
    lambda t: f"{t[2]}{t[0]}, {t[0] + t[1]}{t[3]}"
)
answers = st.one_of(scalars, tuples, intervals)


def respell(answer: str) -> str:
    """The same answer, written differently."""
    out = answer.replace("\\frac", "\\dfrac").replace(",", " ,  ")
    if out.startswith("(") and out.endswith(")"):
        out = "\\left(" + out[1:-1] + "\\right)"
    return f"$ {out} $"


@SETTINGS
@given(answers)
def test_reflexive(a):
    assert EQ.verify(a, respell(a)) is Verdict.EQUAL
    assert EQ.same(respell(a), a)


@SETTINGS
@given(st.one_of(st.tuples(scalars, scalars), st.tuples(tuples, tuples), st.tuples(intervals, intervals)))
def test_symmetric_within_a_kind(pair):
    a, b = pair
    assert EQ.verify(a, b) == EQ.verify(b, a)
    assert EQ.same(a, b) == EQ.same(b, a)


@SETTINGS
@given(st.one_of(answers, st.text(max_size=40)))
def test_normalize_is_idempotent(s):
    assert normalize(normalize(s)) == normalize(s)


PATHOLOGICAL = {
    "power tower": "9^{9^{9^{9}}}",
    "factorials": "10!!!!!!!",
    "nested braces": "{" * 10_000 + "1" + "}" * 10_000,
    "megabyte": "1" * 1_000_000,
}


@pytest.mark.parametrize("answer", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_answers_end_in_time_and_are_ungraded(answer):
    eq = Equivalence(timeout=1)
    start = time.monotonic()
    verdict = eq.verify("2", answer)
    assert time.monotonic() - start < 1 + eq_margin() + 30  # the worker restart is the slow part
    assert verdict is Verdict.UNGRADED
    assert eq.ungraded == 1 and eq.grade("2", answer) is None


def eq_margin() -> float:
    from cascadec.runtime.verify_pool import Workers

    return Workers.MARGIN


@pytest.mark.parametrize("answer", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_completions_extract_fast(answer):
    start = time.monotonic()
    extract_answer("so \\boxed{" + answer + "} and " + "{" * 10_000)
    assert time.monotonic() - start < 2
