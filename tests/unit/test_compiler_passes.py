"""Each compiler pass on its own (static checks: test_compiler_checks.py)."""

from __future__ import annotations

import math

import pytest
from compiler_specs import CTX, RETRY, SAMPLED, cascade, codes, spec, three

from cascadec.compiler import passes as P
from cascadec.compiler.context import Context, MarkerLocator
from cascadec.compiler.draft import lower
from cascadec.core.tier_rules import guess_params
from cascadec.registry import ModelEntry, ModelRegistry
from cascadec.spec.model import Spec


def upto(s: Spec, last, ctx: Context = CTX):
    """Run the passes before ``last`` (they must succeed), then ``last`` alone."""
    draft = lower(s)
    for p in P.PASSES[: P.PASSES.index(last)]:
        draft, diags = p(draft, ctx)
        assert not [d for d in diags if d.is_error], diags
    return last(draft, ctx)


def test_passes_run_in_the_documented_order():
    assert [p.__name__ for p in P.PASSES] == [
        "resolve_aliases",
        "enforce_greedy_only",
        "skip_tiers",
        "normalize_kind",
        "apply_defaults",
        "compile_policies",
        "compile_route",
        "attach_rules",
    ]


# --- resolve_aliases ---------------------------------------------------------------------------
def test_resolve_aliases():
    d, diags = upto(
        cascade({"model": "1.5B", **SAMPLED}, {"model": "Qwen/Qwen2.5-Math-7B-Instruct"}), P.resolve_aliases
    )
    assert diags == []
    assert [t.entry.id for t in d.tiers] == [
        "Qwen/Qwen2.5-Math-1.5B-Instruct",
        "Qwen/Qwen2.5-Math-7B-Instruct",
    ]
    assert [t.alias for t in d.tiers] == ["1.5B", "7B"]


def test_unknown_alias_suggests():
    _, diags = upto(cascade({"model": "1.5b", **SAMPLED}, {"model": "72B"}), P.resolve_aliases)
    assert codes(diags) == ["E105"] and diags[0].fix == "did you mean 1.5B?"


def test_unknown_full_id_runs_as_given():
    d, diags = upto(spec({"plain": "acme/Math-3B"}), P.resolve_aliases)
    assert codes(diags) == ["W104"]
    assert d.tiers[0].entry.params == 3e9 and d.tiers[0].alias is None


@pytest.mark.parametrize(
    ("name", "params"), [("org/m-7B-x", 7e9), ("org/tiny-0.5M", 5e5), ("org/qwen2.5", 1e9)]
)
def test_guess_params(name, params):
    assert guess_params(name) == params


# --- enforce_greedy_only -------------------------------------------------------------------------
def test_greedy_only_is_enforced_visibly():
    d, diags = upto(cascade({"model": "7B", **SAMPLED}, {"model": "72B", **SAMPLED}), P.enforce_greedy_only)
    assert [(t.k, t.temperature) for t in d.tiers] == [(4, 0.7), (1, 0.0)]
    assert codes(diags) == ["W103"] and "k4_t0.7 runs as k1_t0.0" in diags[0].message


def test_greedy_only_untouched_when_already_greedy():
    _, diags = upto(cascade({"model": "7B", **SAMPLED}, {"model": "72B"}), P.enforce_greedy_only)
    assert diags == []


# --- skip_tiers ----------------------------------------------------------------------------------
def test_cost_aware_skip_drops_first_tier_at_threshold():
    d, diags = upto(three(5, adaptive_k={"escalation_k_threshold": 5}), P.skip_tiers)
    assert [t.spec.model for t in d.tiers] == ["7B", "72B"] and diags == []
    assert d.written_tiers == 3 and d.notes


def test_cost_aware_skip_keeps_tier_below_threshold():
    d, _ = upto(three(4, adaptive_k={"escalation_k_threshold": 5}), P.skip_tiers)
    assert len(d.tiers) == 3


def test_cost_aware_skip_is_left_to_runtime_for_per_problem_k():
    s = three(
        5,
        adaptive_k={
            "policy": "difficulty_buckets",
            "buckets": [[0.5, 2], [1, 8]],
            "escalation_k_threshold": 5,
        },
    )
    d, _ = upto(s, P.skip_tiers)
    assert len(d.tiers) == 3


# --- normalize_kind ------------------------------------------------------------------------------
def test_single_tier_cascade_is_a_vote():
    d, diags = upto(cascade({"model": "7B", **SAMPLED}), P.normalize_kind)
    assert d.kind == "mv" and codes(diags) == ["W101"]


def test_cascade_skipped_to_one_tier_is_a_vote_without_warning():
    s = cascade(
        {"model": "1.5B", "k": 8, "temperature": 0.7},
        {"model": "7B", **SAMPLED},
        adaptive_k={"escalation_k_threshold": 8},
    )
    d, diags = upto(s, P.normalize_kind)
    assert d.kind == "mv" and diags == []


# --- apply_defaults ------------------------------------------------------------------------------
def test_defaults():
    d, diags = upto(three(4), P.apply_defaults)
    assert diags == []
    assert [t.top_p for t in d.tiers] == [0.8, 0.8, 1.0]
    assert [t.seed for t in d.tiers] == [0, 0, 0]  # the spec seed, never the position
    assert [t.max_tokens for t in d.tiers] == [2048] * 3
    assert [t.escalate_if for t in d.tiers] == ["agreement < 0.75", "agreement < 0.75", None]
    assert d.prompt == "qwen-math-cot"


def test_spec_defaults_and_tier_values_win():
    tiers = [{"model": "1.5B", **SAMPLED, "top_p": 0.95, "seed": 42}, {"model": "72B", "top_p": 0.5}]
    s = spec({"cascade": tiers}, defaults={"top_p": 0.9, "seed": 10, "max_tokens": 512, "prompt": "plain"})
    d, _ = upto(s, P.apply_defaults)
    assert [(t.top_p, t.seed, t.max_tokens) for t in d.tiers] == [
        (0.95, 42, 512),
        (1.0, 10, 512),
    ]  # greedy: top_p 1
    assert d.prompt == "plain"


def test_target_conf_and_entropy_defaults():
    d, _ = upto(three(4, target_conf=0.5), P.apply_defaults)
    assert d.tiers[0].escalate_if == "agreement < 0.5"
    e = spec({"entropy_cascade": [{"model": "1.5B", **SAMPLED}, {"model": "72B"}], "target_entropy": 0.9})
    d, _ = upto(e, P.apply_defaults)
    assert d.tiers[0].escalate_if == "entropy > 0.9 or no_answer > 0.5"


def test_conditions_are_canonicalised_and_errors_located(tmp_path):
    d, _ = upto(
        cascade({"model": "7B", **SAMPLED, "escalate_if": "agreement<0.50"}, {"model": "72B"}),
        P.apply_defaults,
    )
    assert d.tiers[0].escalate_if == "agreement < 0.5"
    _, diags = upto(
        cascade({"model": "7B", **SAMPLED, "escalate_if": "agrement < 0.5"}, {"model": "72B"}),
        P.apply_defaults,
    )
    assert codes(diags) == ["E211"]


def test_max_tokens_capped_by_max_model_len():
    small = ModelRegistry(
        models=(ModelEntry(id="m/a", aliases=("a",), params=1e6, max_model_len=64, prompt="p"),)
    )
    ctx = Context(small, MarkerLocator())
    d, diags = upto(spec({"plain": "a"}), P.apply_defaults, ctx)
    assert d.tiers[0].max_tokens == 64 and diags == [] and d.prompt == "p"
    d, diags = upto(spec({"plain": "a"}, defaults={"max_tokens": 100}), P.apply_defaults, ctx)
    assert d.tiers[0].max_tokens == 64 and codes(diags) == ["W400"]


def test_escalate_if_on_last_tier_is_ignored_visibly():
    d, diags = upto(
        cascade({"model": "7B", **SAMPLED}, {"model": "72B", "escalate_if": "agreement < 1"}),
        P.apply_defaults,
    )
    assert d.tiers[-1].escalate_if is None and codes(diags) == ["W400"]


# --- compile_policies ----------------------------------------------------------------------------
def test_fixed_policy_needs_no_plan_entry():
    d, _ = upto(three(4, adaptive_k={"policy": "fixed", "escalation_k_threshold": 5}), P.compile_policies)
    assert d.adaptive_k is None


def test_bucket_policy_early_stop_and_budget():
    s = three(
        4,
        adaptive_k={"policy": "difficulty_buckets", "buckets": [[0.5, 2], [1, 8]]},
        early_stop={"round_size": 2},
        budget={"max_samples_per_problem": 30},
    )
    d, diags = upto(s, P.compile_policies)
    assert diags == []
    assert d.adaptive_k.policy == "difficulty_buckets" and d.adaptive_k.buckets == ((0.5, 2), (1.0, 8))
    assert d.early_stop.round_size == 2 and d.budget.max_samples_per_problem == 30


def test_adaptive_k_needs_a_sampled_first_tier():
    s = cascade({"model": "7B"}, {"model": "72B"}, adaptive_k={"policy": "budget", "total_budget": 100})
    _, diags = upto(s, P.compile_policies)
    assert codes(diags) == ["E400"]
    s = cascade(
        {"model": "7B"}, {"model": "72B"}, adaptive_k={"policy": "difficulty_buckets", "buckets": [[1, 2]]}
    )
    assert codes(upto(s, P.compile_policies)[1]) == ["E400"]


def test_start_tiers_per_difficulty():
    starts = {"policy": "difficulty_buckets", "start_tiers": [[0.3, 0], [0.7, 1], [1.0, 2]]}
    d, diags = upto(three(1, adaptive_k=starts), P.compile_policies)
    assert diags == [] and d.adaptive_k.start_tiers == ((0.3, 0), (0.7, 1), (1.0, 2))
    # a greedy first tier is fine when only the start tier varies: k never changes
    s = cascade({"model": "7B"}, {"model": "72B"}, adaptive_k={**starts, "start_tiers": [[0.5, 0], [1, 1]]})
    assert upto(s, P.compile_policies)[1] == []
    _, diags = upto(three(1, adaptive_k={**starts, "start_tiers": [[0.5, 3]]}), P.compile_policies)
    assert codes(diags) == ["E400"] and "start tier 3 does not exist" in diags[0].message


@pytest.mark.parametrize(
    "policy",
    [
        {"policy": "difficulty_buckets", "start_tiers": [[0.7, 1], [0.3, 0]]},  # bounds not ascending
        {"policy": "difficulty_buckets", "start_tiers": [[0.5, -1]]},
        {"policy": "fixed", "start_tiers": [[0.5, 1]]},  # start tiers follow a difficulty
    ],
)
def test_bad_start_tiers_are_refused(policy):
    with pytest.raises(ValueError):
        three(1, adaptive_k=policy)


# --- attach_rules --------------------------------------------------------------------------------
def test_strategy_retry_goes_to_sampled_tiers_that_can_escalate():
    d, diags = upto(three(4, retry=RETRY), P.attach_rules)
    assert [t.retry is not None for t in d.tiers] == [True, True, False]
    assert d.tiers[0].retry.when == "entropy > 1" and diags == []


def test_retry_null_switches_it_off_for_a_tier():
    s = cascade(
        {"model": "1.5B", **SAMPLED, "retry": None}, {"model": "7B", **SAMPLED}, {"model": "72B"}, retry=RETRY
    )
    d, _ = upto(s, P.attach_rules)
    assert [t.retry is not None for t in d.tiers] == [False, True, False]


def test_retry_on_greedy_only_tier_is_dropped_visibly():
    s = cascade({"model": "7B", **SAMPLED}, {"model": "72B", "retry": RETRY})
    d, diags = upto(s, P.attach_rules)
    assert d.tiers[1].retry is None and codes(diags) == ["W103"]


def test_entropy_cascade_explores_by_default():
    s = spec(
        {"entropy_cascade": [{"model": "1.5B", **SAMPLED}, {"model": "7B", **SAMPLED}, {"model": "72B"}]}
    )
    d, _ = upto(s, P.attach_rules)
    assert d.tiers[0].explore.when == f"entropy >= {math.floor(math.log(4) * 1e6) / 1e6}"
    assert d.tiers[0].explore.action == "skip_to_top"
    assert d.tiers[1].explore is None  # the next tier is the top one: skipping is escalating


def test_explore_null_and_strategy_explore():
    tiers = [{"model": "1.5B", **SAMPLED}, {"model": "7B", **SAMPLED}, {"model": "72B"}]
    d, _ = upto(spec({"entropy_cascade": tiers, "explore": None}), P.attach_rules)
    assert all(t.explore is None for t in d.tiers)
    hot = {"action": "raise_temperature", "temperature": 1.0, "when": "agreement < 0.5"}
    d, _ = upto(spec({"cascade": tiers, "explore": hot}), P.attach_rules)
    assert [t.explore is not None for t in d.tiers] == [True, True, False]


def test_explore_on_last_tier_is_ignored_visibly():
    s = cascade({"model": "7B", **SAMPLED}, {"model": "72B", "explore": {"action": "skip_to_top"}})
    _, diags = upto(s, P.attach_rules)
    assert codes(diags) == ["W400"]
