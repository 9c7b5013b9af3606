"""Vote policies and early-stopping rules in specs, plans and the compiler's static checks."""

from __future__ import annotations

import pytest
from compiler_specs import CTX, three

from cascadec.compiler.checks import check_policies, check_thresholds
from cascadec.compiler.explain import policy_lines
from cascadec.compiler.pipeline import compile_strategy
from cascadec.core.conditions import parse_condition
from cascadec.core.reachability import reachability
from cascadec.errors import SpecError
from cascadec.spec.model import Spec
from cascadec.spec.vote import StopRule, VotePolicy


def compiled(s: Spec):
    plan_strategy, _models, _diags = compile_strategy(s, CTX)
    return plan_strategy


def check_codes(check, s: Spec) -> list[str]:
    from test_compiler_checks import compiled as for_check

    return [d.code for d in check(*for_check(s), CTX)]


def test_vote_and_rule_reach_the_plan():
    s = three(8, vote={"policy": "filtered", "keep": 0.5, "window": 4}, early_stop={"rule": "weighted"})
    p = compiled(s)
    assert p.vote.policy is VotePolicy.FILTERED and p.vote.keep == 0.5 and p.vote.window == 4
    assert p.early_stop.rule is StopRule.WEIGHTED and p.early_stop.confidence == 0.95
    lines = "\n".join(policy_lines(p))
    assert "keep the 50% most confident" in lines and "P(leader stays leader) >= 0.95" in lines


def test_majority_strategies_have_no_vote_in_the_plan():
    assert compiled(three(4)).vote is None


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"vote": {"policy": "plurality"}}, "policy"),
        ({"vote": {"keep": 0}}, "keep"),
        ({"early_stop": {"rule": "adaptive", "confidence": 0.4}}, "confidence"),
        ({"early_stop": {"rule": "sometimes"}}, "rule"),
    ],
)
def test_bad_values_are_rejected(strategy, message):
    with pytest.raises(Exception, match=message):
        three(4, **strategy)


def test_decided_needs_a_majority_vote():
    s = three(8, vote={"policy": "weighted"}, early_stop={"rule": "decided"})
    assert check_codes(check_policies, s) == ["E400"]
    with pytest.raises(SpecError, match="decided is exact only for majority votes"):
        compile_strategy(s, CTX)


def test_a_rule_that_can_never_stop_early_warns():
    # a unanimous vote needs 4 samples for 0.95; no tier draws more than 4
    assert check_codes(check_policies, three(4, early_stop={"rule": "adaptive"})) == ["W400"]
    assert check_codes(check_policies, three(8, early_stop={"rule": "adaptive"})) == []
    assert check_codes(check_policies, three(8, early_stop={"rule": "esc", "window": 8})) == ["W400"]


def test_weighted_agreement_is_not_a_multiple_of_one_over_k():
    cond = parse_condition("weighted_agreement > 0.3 and weighted_agreement < 0.32")
    assert reachability(parse_condition("agreement > 0.3 and agreement < 0.32"), 4) == "never"
    assert reachability(cond, 4) == "sometimes"
    assert reachability(cond, 1) == "never"  # one sample: all of the weight or none
    s = three(4, vote={"policy": "weighted"})
    s = Spec.model_validate(
        {**s.model_dump(mode="json", exclude_none=True), "strategy": {
            "cascade": [
                {"model": "1.5B", "k": 4, "temperature": 0.7, "escalate_if": "hybrid < 0.6 or lowest_group_conf < 1.5"},
                {"model": "72B"},
            ],
            "vote": {"policy": "weighted"},
        }}
    )  # fmt: skip
    assert check_codes(check_thresholds, s) == []


def test_a_majority_votes_weighted_agreement_moves_in_steps_of_one_over_k():
    cond = parse_condition("weighted_agreement > 0.3 and weighted_agreement < 0.32")
    assert reachability(cond, 4, share_steps=True) == "never"
    assert reachability(parse_condition("hybrid > 0.3 and hybrid < 0.32"), 4, share_steps=True) == "never"
    assert reachability(parse_condition("weighted_agreement > 0.3 and weighted_agreement < 0.34"), 3,
                        share_steps=True) == "sometimes"  # fmt: skip


def _cascade(escalate_if, **strategy):
    s = three(4, **strategy)
    data = s.model_dump(mode="json", exclude_none=True)
    data["strategy"]["cascade"][0]["escalate_if"] = escalate_if
    return Spec.model_validate(data)


def test_the_checks_know_which_vote_the_weighted_agreement_comes_from():
    between = "weighted_agreement > 0.3 and weighted_agreement < 0.32"
    assert check_codes(check_thresholds, _cascade(between)) == ["E400"]  # majority: j/4
    assert check_codes(check_thresholds, _cascade(between, vote={"policy": "weighted"})) == []
    # a filter that keeps one of 4 samples: all of the weight or none (or majority without logprobs)
    assert check_codes(check_thresholds, _cascade(between, vote={"policy": "filtered", "keep": 0.25})) == [
        "E400"
    ]
    assert check_codes(check_thresholds, _cascade(between, vote={"policy": "filtered", "keep": 0.5})) == []
    with pytest.raises(SpecError, match="majority vote's weighted_agreement is its agreement"):
        compile_strategy(_cascade(between), CTX)


def test_an_early_stopped_tier_is_judged_at_every_round():
    # 0.6 < agreement < 0.7 never holds at k = 4 (0.5, 0.75), but 2/3 after 3 of 4 samples
    between = "agreement > 0.6 and agreement < 0.7"
    assert check_codes(check_thresholds, _cascade(between)) == ["E400"]
    stopped = _cascade(between, early_stop={"rule": "adaptive", "confidence": 0.9, "round_size": 1})
    assert check_codes(check_thresholds, stopped) == []
    in_pairs = _cascade(between, early_stop={"rule": "adaptive", "confidence": 0.9, "round_size": 2})
    assert check_codes(check_thresholds, in_pairs) == ["E400"]  # judged at 2 and 4 only
