"""Votes: equivalence clusters, missing answers do not vote, the documented tie-break, early stop."""

import math
import sys

import pytest

from cascadec.runtime.equivalence import Equivalence, Verdict, fast_equal
from cascadec.runtime.verify_pool import Workers
from cascadec.runtime.voting import Ballot, answer_entropy, tally

EXACT = Equivalence("exact")


def votes(*answers, lp=None):
    return [Ballot(a, None if lp is None else lp[i]) for i, a in enumerate(answers)]


def test_majority_and_counts():
    v = tally(votes("4", "4", "5", "4"), EXACT)
    assert v.winner == "4" and v.top == 3 and v.second == 1 and v.drawn == 4 and v.voters == 4
    assert v.counts() == {"4": 3, "5": 1}


def test_missing_answers_do_not_vote():
    v = tally(votes(None, None, None, "7"), EXACT)
    assert v.winner == "7" and v.voters == 1 and v.drawn == 4
    assert tally(votes(None, None), EXACT).winner is None
    assert tally([], EXACT).winner is None


def test_numeric_equivalence_clusters_without_sympy():
    v = tally(votes("0.5", "\\frac{1}{2}", "1/2", "2"), EXACT)
    assert v.counts() == {"0.5": 3, "2": 1}  # representative: the earliest member


def test_tie_break_earliest_sample_without_logprobs():
    assert tally(votes("3", "5", "5", "3"), EXACT).winner == "3"
    assert tally(votes("5", "3", "3", "5"), EXACT).winner == "5"


def test_tie_break_logprob_before_order():
    v = tally(votes("3", "5", "5", "3", lp=[-2.0, -0.1, -0.2, -2.0]), EXACT)
    assert v.winner == "5"


def test_tie_break_ignores_logprobs_unless_every_voter_has_them():
    v = tally(votes("3", "5", "5", "3", lp=[None, -0.1, -0.2, -2.0]), EXACT)
    assert v.winner == "3"


def test_more_votes_beat_confidence():
    v = tally(votes("3", "3", "5", lp=[-3.0, -3.0, -0.01]), EXACT)
    assert v.winner == "3"


def test_decided_for_early_stopping():
    v = tally(votes("4", "4", "4"), EXACT)
    assert v.decided(remaining=2) and not v.decided(remaining=3)
    assert not tally(votes(None, None), EXACT).decided(0)


def test_entropy_nats():
    assert answer_entropy(tally(votes("1", "2", "3", "4"), EXACT)) == pytest.approx(math.log(4))
    assert answer_entropy(tally(votes("1", "1", None), EXACT)) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("3", "3.0", True),
        ("10000", "10001", False),
        ("0.5", "\\frac{1}{2}", True),
        ("0.3333", "\\frac{1}{3}", False),  # apart by more than math-verify's rounding closes
        ("0.333333", "\\frac{1}{3}", None),  # within 6-place rounding: math-verify decides
        ("1/3", "0.33", False),
        ("\\frac{1}{3}", "\\frac{333333333}{1000000000}", False),  # exact rationals
        ("1,-2", "-2,1", None),  # math-verify reads both as the set {-2, 1}
        ("4+4/9", "40/9", None),
        ("12", "x", None),
        ("\\pi", "3.14", None),
    ],
)
def test_fast_path(a, b, same):
    assert fast_equal(a, b) is same


def test_math_verify_in_workers_and_cache():
    eq = Equivalence("math")
    assert eq.same("x+1", "1+x")
    assert eq.same("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2")
    assert not eq.same("\\pi", "3")
    before = eq.pairs_verified
    assert eq.same("1+x", "x+1")  # both directions were decided: cached
    assert eq.pairs_verified == before
    v = tally(votes("x+1", "1+x", "2x"), eq)
    assert v.counts() == {"x+1": 2, "2x": 1}


def test_exact_mode_never_calls_sympy():
    assert not Equivalence("exact").same("x+1", "1+x")


def test_hung_worker_is_killed_and_pair_is_ungraded():
    sleeper = (sys.executable, "-c", "import sys, time\nfor line in sys.stdin: time.sleep(60)")
    pool = Workers(1, command=sleeper)
    pool.STARTUP_GRACE = pool.MARGIN = 0.3
    try:
        verdicts = pool.run([("a", "b")], timeout=0)
    finally:
        pool.close()
    assert verdicts == [Verdict.UNGRADED]


def test_signals_from_samples():
    from cascadec.runtime.backends.base import Sample
    from cascadec.runtime.signals import compute_signals, sample_mean_logprob

    class Rec:
        def __init__(self, lp, ent, n=10):
            self.mean_logprob, self.mean_entropy, self.num_tokens = lp, ent, n

    v = tally(votes("1", "1", None, "2"), EXACT)
    sig = compute_signals(v, [Rec(-0.5, 0.2), Rec(-1.5, 0.4), Rec(None, None), Rec(-1.0, 0.3)])
    assert sig["agreement"] == 0.5 and sig["margin"] == 0.25 and sig["no_answer"] == 0.25
    assert sig["mean_logprob"] == pytest.approx(-1.0) and sig["token_entropy"] == pytest.approx(0.3)
    assert sig["tokens"] == 40 and sig["k"] == 4
    assert math.isnan(compute_signals(v, [Rec(None, None)] * 4)["mean_logprob"])
    assert sample_mean_logprob(Sample("x", 3, "stop", (-1.0, float("-inf"), -3.0))) == -2.0
    assert sample_mean_logprob(Sample("x", 1, "stop", None)) is None
