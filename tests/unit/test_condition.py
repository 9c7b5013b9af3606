"""The condition language: parse, print, type-check, evaluate, reachability for a k."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadec.core.conditions import (
    And,
    Compare,
    Not,
    Number,
    Or,
    Signal,
    analyze_condition,
    parse_condition,
)
from cascadec.core.reachability import reachability, threshold_reachable
from cascadec.core.signals import SIGNALS, value_range
from cascadec.errors import SpecError

CANONICAL = [
    ("agreement < 0.75", "agreement < 0.75"),
    ("agreement<0.750", "agreement < 0.75"),
    ("  agreement   <   .5 ", "agreement < 0.5"),
    ("tokens > 1e3", "tokens > 1000"),
    ("mean_logprob < -0.5", "mean_logprob < -0.5"),
    ("agreement < 0.5 or no_answer > 0.25", "agreement < 0.5 or no_answer > 0.25"),
    ("(agreement < 0.5 or no_answer > 0.25) and k == 4", "(agreement < 0.5 or no_answer > 0.25) and k == 4"),
    ("(a_b)", None),  # unknown signal, see below
    ("not (agreement < 0.5)", "not agreement < 0.5"),
    ("not (agreement < 0.5 and k > 1)", "not (agreement < 0.5 and k > 1)"),
    ("(agreement < 0.5 and k > 1) and margin <= 0.25", "agreement < 0.5 and k > 1 and margin <= 0.25"),
    ("entropy >= 1 and agreement != 1", "entropy >= 1 and agreement != 1"),
    ("true", "true"),
    ("not false", "not false"),
]


@pytest.mark.parametrize(("text", "canonical"), [c for c in CANONICAL if c[1]])
def test_canonical_text_round_trips(text, canonical):
    cond = parse_condition(text)
    assert str(cond) == canonical
    assert parse_condition(str(cond)) == cond


def test_ast_shape_and_precedence():
    cond = parse_condition("not agreement < 0.5 and margin > 0 or k == 1")
    assert isinstance(cond, Or)
    first, second = cond.operands
    assert isinstance(first, And) and isinstance(first.operands[0], Not)
    assert first.operands[0].operand == Compare(Signal("agreement"), "<", Number(0.5))
    assert second == Compare(Signal("k"), "==", Number(1))


def test_and_or_flatten_to_one_shape():
    a = parse_condition("(agreement < 1 and margin < 1) and k > 1")
    b = parse_condition("agreement < 1 and (margin < 1 and k > 1)")
    assert a == b and len(a.operands) == 3


def test_positions_do_not_affect_equality():
    assert parse_condition("agreement<0.5") == parse_condition("   agreement  <  0.5")


def test_evaluate_walks_the_ast():
    cond = parse_condition("agreement < 0.5 or (no_answer > 0.25 and not k == 1)")
    assert cond.evaluate({"agreement": 0.25, "no_answer": 0, "k": 4})
    assert not cond.evaluate({"agreement": 0.75, "no_answer": 0, "k": 4})
    assert cond.evaluate({"agreement": 0.75, "no_answer": 0.5, "k": 4})
    assert not cond.evaluate({"agreement": 0.75, "no_answer": 0.5, "k": 1})


def test_evaluate_missing_signal_is_a_clear_key_error():
    with pytest.raises(KeyError, match="margin"):
        parse_condition("margin < 0.5").evaluate({"agreement": 1})


def test_evaluate_never_uses_eval(monkeypatch):
    import builtins

    monkeypatch.setattr(builtins, "eval", lambda *a, **k: pytest.fail("eval called"))
    assert parse_condition("agreement < 1").evaluate({"agreement": 0.5})


def test_signals():
    assert parse_condition("agreement < 0.5 or entropy > 1 and agreement > 0").signals() == {
        "agreement",
        "entropy",
    }
    assert parse_condition("true").signals() == frozenset()


@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ("", "E210", 1),
        ("   ", "E210", 1),
        ("agreement <", "E210", 12),
        ("agreement < 0.5 )", "E210", 17),
        ("agreement $ 3", "E210", 11),
        ("agreement < 0.5 < 1", "E210", 17),
        ("agreemnt < 0.5", "E211", 1),
        ("agreement < 0.5 or foo > 1", "E211", 20),
        ("agreement", "E212", 1),
        ("agreement and margin < 1", "E212", 1),
        ("(agreement < 1) < 2", "E212", 2),
        ("not 0.5", "E212", 5),
        ("1e999 > k", "E212", 1),
        ("(" * 40 + "k > 1" + ")" * 40, "E210", 1),
        ("not " * 200 + "k > 1", "E210", 1),
    ],
)
def test_errors_are_located(text, code, column):
    with pytest.raises(SpecError) as info:
        parse_condition(text)
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.column) == (code, 1, column)
    assert "^" in d.excerpt


def test_unknown_signal_suggests_close_match():
    _, diags = analyze_condition("agrement < 0.5")
    assert diags[0].fix.startswith("did you mean agreement")


def test_positions_rebased_into_enclosing_file():
    _, diags = analyze_condition("agreement < 0.5 or foo > 1", source="s.yaml", line=7, column=20)
    assert diags[0].format().startswith("s.yaml:7:39: E211")


@pytest.mark.parametrize(
    ("text", "k", "expected"),
    [
        ("agreement < 0.75", 4, "sometimes"),
        ("agreement < 0.75", 1, "sometimes"),  # only with no answer at all
        ("agreement > 1", 4, "never"),
        ("agreement == 0.3", 4, "never"),  # steps of 1/4
        ("agreement == 0.25", 4, "sometimes"),
        ("agreement >= 0", 4, "always"),
        ("margin <= 1", 8, "always"),
        ("entropy > 1.5", 4, "never"),  # ln 4 = 1.386
        ("entropy >= 1.386", 4, "sometimes"),
        ("entropy > 0", 1, "never"),
        ("k > 4", 4, "never"),
        ("k == 4", 4, "always"),
        ("tokens < 0", 2, "never"),
        ("mean_logprob > 0", 2, "never"),
        ("mean_logprob < -3", 2, "sometimes"),
        ("agreement < 0.5 and agreement > 0.75", 8, "never"),
        ("agreement < 0.5 or no_answer > 0.25", 4, "sometimes"),
        ("true", 1, "always"),
        ("false", 1, "never"),
    ],
)
def test_reachability(text, k, expected):
    cond = parse_condition(text)
    assert reachability(cond, k) == expected
    assert threshold_reachable(cond, k) == (expected != "never")


def test_value_ranges():
    assert value_range("entropy", 4) == (0.0, math.log(4))
    assert value_range("k", 3) == (3.0, 3.0)
    assert value_range("mean_logprob", 3)[1] == 0.0
    assert set(SIGNALS) == {
        "agreement",
        "margin",
        "entropy",
        "no_answer",
        "mean_logprob",
        "token_entropy",
        "tokens",
        "k",
        "weighted_agreement",
        "hybrid",
        "confidence",
        "winner_conf",
        "token_conf",
        "lowest_group_conf",
        "bottom10_conf",
        "tail_conf",
        "score_mean",
        "score_max",
        "winner_score",
        "agrees_prev",
        "router_p",
    }


# --- laws ---------------------------------------------------------------------------------
_signal = st.sampled_from(sorted(SIGNALS)).map(Signal)
_number = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: Number(float(v)))
_compare = st.builds(Compare, _signal, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _number | _signal)
_conditions = st.recursive(
    _compare,
    lambda inner: (
        st.builds(Not, inner)
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs)))
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(_conditions)
def test_parse_print_round_trip(cond):
    assert parse_condition(str(cond)) == cond


@settings(max_examples=40, deadline=None)
@given(_conditions, st.integers(1, 8))
def test_reachability_agrees_with_sampled_outcomes(cond, k):
    """'never' and 'always' are proofs: no concrete outcome contradicts them."""
    verdict = reachability(cond, k)
    for j in range(k + 1):
        signals = {name: value_range(name, k)[0] if name != "k" else k for name in SIGNALS}
        signals.update(agreement=j / k, margin=j / k, no_answer=(k - j) / k, entropy=math.log(k) * j / k)
        value = cond.evaluate(signals)
        if verdict == "never":
            assert not value
        elif verdict == "always":
            assert value
