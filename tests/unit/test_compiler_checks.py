"""Each static check on its own, the cost model, marker expressibility and the pipeline."""

from __future__ import annotations

import pytest
from compiler_specs import CTX, RETRY, SAMPLED, cascade, codes, spec, three

from cascadec.compiler.checks import (
    CHECKS,
    check_budget,
    check_cost_growth,
    check_greedy_k,
    check_policies,
    check_thresholds,
)
from cascadec.compiler.cost import entry_choices, expected, first_tier_ks, paths, worst_case
from cascadec.compiler.marker_of import STRATEGY_FIELDS, TIER_FIELDS, marker_of
from cascadec.compiler.pipeline import compile_strategy, run_passes
from cascadec.errors import SpecError
from cascadec.plan import PlanStrategy, PlanTier, resolve_tiers
from cascadec.spec.model import Spec


# --- static checks -------------------------------------------------------------------------------
def compiled(s: Spec):
    draft, _ = run_passes(s, CTX)
    strategy, _, _ = compile_strategy(s, CTX, checks=())
    return strategy, tuple(t.path for t in draft.tiers)


def run_check(check, s: Spec) -> list[str]:
    return codes(check(*compiled(s), CTX))


def test_check_greedy_k():
    assert run_check(check_greedy_k, spec({"mv": {"model": "7B", "k": 4}})) == ["E104"]
    s = cascade({"model": "7B", "retry": {"when": "true", "extra_k": 2}}, {"model": "72B"})
    assert run_check(check_greedy_k, s) == ["E104"]


@pytest.mark.parametrize(
    ("condition", "k", "expected"),
    [
        ("agreement < 0.75", 4, []),
        ("agreement == 0.3", 4, ["E400"]),  # steps of 1/4
        ("agreement > 1", 4, ["E400"]),
        ("entropy > 1.5", 4, ["E400"]),  # ln 4 = 1.386
        ("agreement <= 1", 4, ["W400"]),  # always: the tier's answers are never used
    ],
)
def test_check_thresholds(condition, k, expected):
    s = cascade({"model": "7B", "k": k, "temperature": 0.7, "escalate_if": condition}, {"model": "72B"})
    assert run_check(check_thresholds, s) == expected


def test_check_thresholds_per_adaptive_k():
    s = cascade(
        {"model": "7B", **SAMPLED, "escalate_if": "entropy > 1"},
        {"model": "72B"},
        adaptive_k={"policy": "difficulty_buckets", "buckets": [[0.5, 2], [1, 8]]},
    )
    assert run_check(check_thresholds, s) == ["W400"]  # never at k=2 (ln 2 < 1), fine at 4 and 8


def test_always_escalating_tier_is_used_when_a_later_tier_asks_for_a_second_opinion():
    ask = {"model": "1.5B", "escalate_if": "true"}
    alone = cascade(ask, {"model": "7B", "escalate_if": "agreement < 1"}, {"model": "72B"})
    assert run_check(check_thresholds, alone) == ["W400"]  # its answers are never used
    second = cascade(ask, {"model": "7B", "escalate_if": "agrees_prev < 1"}, {"model": "72B"})
    assert run_check(check_thresholds, second) == []  # the next tier compares with them


def test_check_explore_that_always_skips_makes_tiers_unreachable():
    tiers = [
        {"model": "1.5B", **SAMPLED, "explore": {"when": "true"}},
        {"model": "7B", **SAMPLED},
        {"model": "72B"},
    ]
    assert run_check(check_thresholds, spec({"cascade": tiers})) == ["E400"]


def test_check_retry_that_never_fires():
    s = cascade(
        {"model": "7B", "k": 2, "temperature": 0.7, "retry": {"when": "entropy > 1", "extra_k": 2}},
        {"model": "72B"},
    )
    assert run_check(check_thresholds, s) == ["W400"]


def test_check_cost_growth():
    assert run_check(
        check_cost_growth, cascade({"model": "7B", **SAMPLED}, {"model": "1.5B", **SAMPLED})
    ) == ["W102"]
    assert run_check(check_cost_growth, three(4)) == []


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ({"max_samples_per_problem": 3}, ["E400"]),
        ({"max_samples_per_problem": 6}, ["W400"]),
        ({"max_samples_per_problem": 9}, []),
        ({"max_cost_per_problem": 1e12}, ["E400"]),
        ({"max_cost_per_problem": 1e14}, ["W400"]),
        ({"max_cost_per_problem": 1e15}, []),
    ],
)
def test_check_budget(budget, expected):
    assert run_check(check_budget, three(4, budget=budget)) == expected


def test_check_policies():
    assert run_check(check_policies, three(4, early_stop={"round_size": 4})) == ["W400"]
    s = three(
        4, adaptive_k={"policy": "difficulty_buckets", "buckets": [[1, 8]], "escalation_k_threshold": 2}
    )
    assert run_check(check_policies, s) == ["W400"]


def test_all_checks_are_listed():
    assert len(CHECKS) == 6


# --- cost and marker expressibility -----------------------------------------------------------------
def test_cost_model():
    s, _ = compiled(three(4, retry=RETRY))
    w = worst_case(s)
    assert w.samples == 4 + 4 + 4 + 4 + 1
    assert w.cost == pytest.approx(2048 * (8 * 1.54e9 + 8 * 7.62e9 + 72.7e9))
    e = expected(s, escalation_rate=0.0)
    assert e.samples == 4 and e.relative == pytest.approx(4 * 0.25 * 1.54e9 / 72.7e9)
    assert first_tier_ks(s) == [4]


def test_start_tiers_in_paths_and_resolution():
    policy = {
        "policy": "difficulty_buckets",
        "buckets": [[0.5, 2]],
        "start_tiers": [[0.3, 0], [0.7, 1], [1, 2]],
    }
    s, _ = compiled(three(4, adaptive_k=policy))
    assert entry_choices(s) == [(2, 0), (2, 1), (2, 2), (4, 0)]  # (4, 0): a problem without a difficulty
    assert sorted(len(p) for p in paths(s)) == [1, 2, 3, 3]
    resolved = resolve_tiers(s, [0.1, 0.5, 0.9, 2.0, None])
    assert [[t.alias for t in r] for r in resolved] == [
        ["1.5B", "7B", "72B"],
        ["7B", "72B"],
        ["72B"],
        ["72B"],
        ["1.5B", "7B", "72B"],
    ]
    assert [r[0].k for r in resolved] == [2, 4, 1, 1, 4]
    assert worst_case(s).cost == worst_case(compiled(three(4))[0]).cost


def test_marker_of():
    strategy, _ = compiled(three(4))
    assert marker_of(strategy, CTX.registry) == "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0"
    assert strategy.marker == strategy.key == "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0"
    for changed in (three(4, target_conf=0.5), three(4, retry=RETRY)):
        strategy, _ = compiled(changed)
        assert strategy.marker is None and marker_of(strategy, CTX.registry) is None
    entropy, _ = compiled(
        spec(
            {"entropy_cascade": [{"model": "1.5B", **SAMPLED}, {"model": "7B", **SAMPLED}, {"model": "72B"}]}
        )
    )
    assert entropy.tiers[0].explore is not None  # the kind's default exploration is still a marker
    assert entropy.marker == "mv_entropy_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0"


def test_every_plan_field_has_a_marker_decision():
    """A field added to the plan must say whether a marker spells it or what a marker defaults it to."""
    assert set(TIER_FIELDS) ^ set(PlanTier.model_fields) == set(), "decide it in compiler/marker_of.py"
    assert set(STRATEGY_FIELDS) ^ set(PlanStrategy.model_fields) == set(), (
        "decide it in compiler/marker_of.py"
    )


def test_marker_of_rejects_every_non_default_tier_field():
    strategy, _ = compiled(three(4))
    first = strategy.tiers[0]
    changes = {"top_p": 0.9, "max_tokens": 100, "seed": 7, "escalate_if": "agreement < 0.5"}
    for field, value in changes.items():
        tiers = (first.model_copy(update={field: value}), *strategy.tiers[1:])
        assert marker_of(strategy.model_copy(update={"tiers": tiers}), CTX.registry) is None, field
    for field, value in {"prompt": "plain", "final_answer": "pooled"}.items():
        assert marker_of(strategy.model_copy(update={field: value}), CTX.registry) is None, field


def test_pipeline_stops_at_first_failing_pass():
    with pytest.raises(SpecError) as info:
        run_passes(cascade({"model": "9B", "escalate_if": "nonsense"}, {"model": "72B"}), CTX)
    assert codes(info.value.diagnostics) == ["E105"]
