"""The ladder numbers of ``cascadec zoo eval``: AUROC and the issue's targets."""

import math

import pandas as pd

from cascadec.zoo.evaluate import Ladder, ModelLadder, auroc


def test_auroc_perfect_inverse_and_ties():
    right = pd.Series([True, True, False, False])
    assert auroc(pd.Series([1.0, 0.9, 0.5, 0.25]), right) == 1.0
    assert auroc(pd.Series([0.25, 0.5, 0.9, 1.0]), right) == 0.0
    assert auroc(pd.Series([1.0, 1.0, 1.0, 1.0]), right) == 0.5
    assert auroc(pd.Series([1.0, 0.5, 0.5, 0.25]), right) == 0.875


def test_auroc_without_both_classes_is_nan():
    assert math.isnan(auroc(pd.Series([1.0, 0.5]), pd.Series([True, True])))


def _model(alias, params, greedy, easiest, vote_auroc):
    return ModelLadder(alias, params, greedy, {0: easiest, 1: 0.5}, greedy, vote_auroc, 1.0)


def test_ladder_targets():
    good = Ladder(
        1000,
        0,
        [
            _model("s", 100, 0.6, 1.0, 0.9),
            _model("m", 500, 0.8, 1.0, 0.8),
            _model("l", 3000, 0.99, 1.0, float("nan")),
        ],
    )
    assert good.failures() == []
    bad = Ladder(1000, 0, [_model("s", 100, 0.9, 0.9, 0.7), _model("l", 2000, 0.9, 1.0, 0.9)])
    missed = bad.failures()
    assert len(missed) == 5, missed
    assert '"missed_targets"' in bad.to_json()


def test_measure_reads_the_ladder_off_a_replayed_run(tmp_path):
    """The whole ``zoo eval`` path on the replay backend: small model right on even problems
    only (and split votes there on odd ones), the others always right."""
    from cascadec.registry import load_registry, named_registry
    from cascadec.runtime.testing import bank_from_answers
    from cascadec.zoo.evaluate import measure
    from cascadec.zoo.task import sample_problems

    problems = sample_problems(20, 9)
    small, mid, large = sorted(load_registry(named_registry("zoo")).models, key=lambda e: e.params)
    answers = {}
    for i, p in enumerate(problems):
        right, wrong = p["answer"], str(int(p["answer"]) + 1)
        answers[(small.id, p["id"])] = [right] * 5 if i % 2 == 0 else [wrong, right, wrong, "7", wrong]
        answers[(mid.id, p["id"])] = [right] * 5
        answers[(large.id, p["id"])] = [right] * 5
    spec = tmp_path / "vote_cascade.yaml"  # an agreement cascade, whatever the shipped demo is
    spec.write_text(
        "version: 1\nname: vote_cascade\nmodels: zoo\n"
        "defaults: {max_tokens: 48, prompt: raw, seed: 0}\n"
        "strategy:\n  cascade:\n"
        "    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: 'agreement < 1.0'}\n"
        "    - {model: 1.1M, k: 1, temperature: 0.0}\n"
        "  final_answer: last_tier\n"
    )
    ladder = measure(
        20,
        9,
        tmp_path / "run",
        backend="replay",
        spec=spec,
        bank=bank_from_answers(answers, logprob=-0.001),
    )
    assert [m.alias for m in ladder.models] == ["0.034M", "0.084M", "1.1M"]
    assert ladder.models[0].greedy == 0.5 and ladder.models[0].vote == 0.5
    assert ladder.models[0].vote_auroc == 1.0
    assert ladder.models[-1].greedy == 1.0
    assert ladder.cascade["accuracy"] == 1.0 and ladder.cascade["escalated"] == 0.5
    assert 0 < ladder.cascade["cost_vs_largest"] < 1


def test_demo_plan_names_every_strategys_role():
    from cascadec.zoo.demo_plan import DEMO_SOURCE, build_demo, demo_spec_path, vote_baseline

    demo = build_demo(demo_spec_path(), 3, 0)
    keys = [s.key for s in demo.plan.strategies]
    assert keys[0] == demo.cascade and sorted(keys[1:]) == sorted(demo.baselines)
    assert demo.greedy == {"0.034M": "0.034M", "0.084M": "0.084M", "1.1M": "1.1M"}
    first = demo.plan.strategies[0].tiers[0]
    k, t = vote_baseline(first.k, first.temperature)  # a real vote, never a greedy twin
    assert k > 1 and t > 0
    assert demo.vote == {a: f"mv_{a}_k{k}_t{t}" for a in demo.greedy}
    assert demo.reference == "1.1M"
    assert len(demo.table) == 3 * len(keys) and set(demo.table["strategy"]) == set(keys)
    assert demo.plan.source.startswith(DEMO_SOURCE)
