"""Every path through the executor, on small sample banks and the real replay backend."""

import pandas as pd
import pytest

from cascadec.api import execute, prepare, run
from cascadec.errors import BackendError, DataError
from cascadec.plan import AdaptiveK, Budget, EarlyStop, Exploration, RetryRule
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier

MODELS = {"S": 1.5, "M": 7.0, "L": 72.0}
CASCADE = [
    tier("S", 4, escalate_if="agreement < 0.75", cost=1.5),
    tier("M", 4, escalate_if="agreement < 0.75", cost=7.0),
    tier("L", 1, 0.0, cost=72.0),
]


def go(strategies, answers, problems, **kw):
    """Run and return (problems frame, samples frame, backend, executor)."""
    plan = make_plan(strategies, MODELS)
    if isinstance(problems, dict):
        problems = pd.DataFrame(
            {"id": list(problems), "problem": ["?"] * len(problems), "answer": list(problems.values())}
        )
    column = kw.pop("column", None)
    backend = ReplayBackend(kw.pop("bank", None) if "bank" in kw else bank_from_answers(answers))
    prepared = prepare(plan, problems, strategy_column=column)
    eq = Equivalence(kw.pop("equivalence", "exact"))
    res, samples, executor, _ = execute(prepared, backend, equivalence=eq, **kw)
    return res.set_index("id", drop=False), samples, backend, executor


def decisions(row):
    """The per-tier records of a result row (the nested ``tiers`` column)."""
    return list(row["tiers"])


def path(row) -> str:
    """The row's path through the tiers, compactly: ``0:escalate > 1:stop``."""
    return " > ".join(f"{step['tier']}:{step['decision']}" for step in row["path"])


def votes(row) -> list[dict]:
    return [{v["answer"]: v["count"] for v in t["votes"]} for t in row["tiers"]]


def signals(row) -> list[dict]:
    return [t["signals"] for t in row["tiers"]]


def test_stop_at_tier_one():
    res, samples, backend, _ = go([strategy("c", CASCADE)], {("S", "p"): ["4", "4", "4", "5"]}, {"p": "4"})
    row = res.loc["p"]
    assert row["final_answer"] == "4" and row["correct"] and row["tiers_used"] == 1
    assert path(row) == "0:stop" and row["stop_reason"] == "confident"
    assert backend.loads == ["S"]  # nobody needed M or L: never loaded
    assert votes(row) == [{"4": 3, "5": 1}]
    sig = signals(row)[0]
    assert sig["agreement"] == 0.75 and sig["margin"] == 0.5 and sig["no_answer"] == 0 and sig["k"] == 4
    assert list(samples["sample_index"]) == [0, 1, 2, 3]


def test_escalate_once_and_cost():
    answers = {("S", "p"): ["1", "2", "2", "3"], ("M", "p"): ["2", "2", "2", "2"]}
    res, samples, backend, _ = go([strategy("c", CASCADE)], answers, {"p": "2"})
    row = res.loc["p"]
    assert path(row) == "0:escalate > 1:stop" and row["final_answer"] == "2" and row["tiers_used"] == 2
    assert list(row["models"]) == ["S", "M"]
    tokens = samples.groupby("model")["num_tokens"].sum()
    assert row["tokens"] == tokens.sum()
    assert row["cost"] == pytest.approx(tokens["S"] * 1.5 + tokens["M"] * 7.0)
    assert backend.loads == ["S", "M"]


def test_escalate_to_the_top():
    answers = {("S", "p"): ["1", "2", "3", "4"], ("M", "p"): ["5", "6", "5", "6"], ("L", "p"): ["7"]}
    res, *_ = go([strategy("c", CASCADE)], answers, {"p": "7"})
    row = res.loc["p"]
    assert path(row) == "0:escalate > 1:escalate > 2:stop" and row["stop_reason"] == "last_tier"
    assert row["final_answer"] == "7" and row["correct"] and row["samples"] == 9


def test_retry_then_stop():
    retry = RetryRule(max=1, when="agreement >= 0.5", extra_k=4)
    tiers = [tier("S", 4, escalate_if="agreement < 0.75", retry=retry), *CASCADE[1:]]
    answers = {("S", "p"): ["4", "4", "5", "6", "4", "4", "4", "4"]}
    res, samples, backend, _ = go([strategy("c", tiers)], answers, {"p": "4"})
    row = res.loc["p"]
    assert path(row) == "0:stop" and row["samples"] == 8 and decisions(row)[0]["retries"] == 1
    assert list(samples["phase"]) == ["sample"] * 4 + ["retry"] * 4
    assert list(samples["round"]) == [0] * 4 + [1] * 4
    assert signals(row)[0]["agreement"] == 0.75
    assert backend.loads == ["S"]


def test_retry_exhausted_then_escalate():
    retry = RetryRule(max=1, when="agreement >= 0.5", extra_k=2)
    tiers = [tier("S", 4, escalate_if="agreement < 0.75", retry=retry), *CASCADE[1:]]
    answers = {("S", "p"): ["4", "4", "5", "6", "5", "6"], ("M", "p"): ["5"] * 4}
    res, *_ = go([strategy("c", tiers)], answers, {"p": "5"})
    assert path(res.loc["p"]) == "0:escalate > 1:stop" and res.loc["p", "final_answer"] == "5"


def test_retry_on_a_majority_vote_without_escalation():
    mv = strategy("mv", [tier("M", 4, retry=RetryRule(max=2, when="agreement < 0.75", extra_k=4))])
    answers = {("M", "p"): ["1", "2", "3", "3", "3", "3", "3", "3"], ("M", "q"): ["1", "1", "1", "2"]}
    res, *_ = go([mv], answers, {"p": "3", "q": "1"})
    assert decisions(res.loc["p"])[0]["retries"] == 1 and res.loc["p", "samples"] == 8
    assert res.loc["p", "final_answer"] == "3" and res.loc["p", "stop_reason"] == "last_tier"
    assert decisions(res.loc["q"])[0]["retries"] == 0


def test_skip_a_hopeless_tier():
    hopeless = Exploration(when="entropy >= 1.386294", action="skip_to_top")
    tiers = [tier("S", 4, escalate_if="agreement < 0.75", explore=hopeless), *CASCADE[1:]]
    answers = {
        ("S", "p"): ["1", "2", "3", "4"],
        ("L", "p"): ["9"],
        ("S", "q"): ["1", "1", "2", "3"],
        ("M", "q"): ["1"] * 4,
    }
    res, _, backend, _ = go([strategy("c", tiers, kind="entropy_cascade")], answers, {"p": "9", "q": "1"})
    assert path(res.loc["p"]) == "0:skip_to_top > 2:stop" and res.loc["p", "final_answer"] == "9"
    assert list(res.loc["p", "models"]) == ["S", "L"]
    assert path(res.loc["q"]) == "0:escalate > 1:stop"  # not hopeless: normal escalation
    assert backend.loads == ["S", "M", "L"]


def test_explore_raises_temperature():
    hot = Exploration(when="agreement < 0.5", action="raise_temperature", temperature=1.0, extra_k=4)
    tiers = [tier("S", 4, 0.7, escalate_if="agreement < 0.5", explore=hot), *CASCADE[1:]]
    rows = bank_from_answers({("S", "p"): ["1", "2", "3", "4", "4", "4", "4", "4"]})
    rows["temperature"] = [0.7] * 4 + [1.0] * 4
    res, samples, *_ = go([strategy("c", tiers)], None, {"p": "4"}, bank=rows)
    assert path(res.loc["p"]) == "0:stop" and res.loc["p", "final_answer"] == "4"
    assert list(samples["phase"]) == ["sample"] * 4 + ["explore"] * 4


def test_cost_aware_skip_from_adaptive_k():
    adaptive = AdaptiveK(policy="difficulty_buckets", buckets=((0.5, 2), (1.0, 8)), escalation_k_threshold=5)
    s = strategy("c", CASCADE, adaptive_k=adaptive)
    answers = {("S", "easy"): ["1", "1"], ("M", "hard"): ["2"] * 4}
    problems = pd.DataFrame({"id": ["easy", "hard"], "problem": ["?", "?"], "difficulty": [0.1, 0.9]})
    res, samples, backend, _ = go([s], answers, problems)
    assert path(res.loc["easy"]) == "0:stop" and res.loc["easy", "samples"] == 2
    assert path(res.loc["hard"]) == "1:stop"  # k=8 ≥ threshold 5: the small tier was dropped
    assert backend.loads == ["S", "M"]


def test_ties_break_to_the_earliest_sample():
    mv = strategy("mv", [tier("M", 4)])
    res, *_ = go([mv], {("M", "p"): ["3", "5", "5", "3"]}, {"p": "3"})
    assert res.loc["p", "final_answer"] == "3"
    assert votes(res.loc["p"]) == [{"3": 2, "5": 2}]


def test_no_answers_anywhere():
    answers = {("S", "p"): [None] * 4, ("M", "p"): [None] * 4, ("L", "p"): [None]}
    res, *_ = go([strategy("c", CASCADE)], answers, {"p": "1"})
    row = res.loc["p"]
    assert pd.isna(row["final_answer"]) and not row["correct"]
    assert row["tiers_used"] == 3
    assert signals(row)[0]["no_answer"] == 1.0


def test_truncated_samples_do_not_vote():
    answers = {("S", "p"): ["~5", "~5", "~5", "4"], ("M", "p"): ["5"] * 4}
    res, samples, *_ = go([strategy("c", CASCADE)], answers, {"p": "5"})
    assert votes(res.loc["p"])[0] == {"4": 1}
    assert signals(res.loc["p"])[0]["no_answer"] == 0.75
    first = samples[samples["model"] == "S"]
    assert list(first["finish_reason"]) == ["length"] * 3 + ["stop"]
    assert list(first["votes"]) == [False, False, False, True]
    assert path(res.loc["p"]) == "0:escalate > 1:stop"


def test_mixed_strategies_load_each_model_once():
    strategies = [
        strategy("cascade", CASCADE),
        strategy("mv_M", [tier("M", 4)]),
        strategy("plain_L", [tier("L", 1, 0.0)]),
        strategy("small_big", [tier("S", 4, escalate_if="agreement < 0.75"), tier("L", 1, 0.0)]),
    ]
    answers = {}
    rows = []
    for i in range(12):
        pid = f"p{i}"
        answers[("S", pid)] = ["1", "2", "3", "4"] if i in (0, 4) or i % 4 == 3 else ["1"] * 4
        answers[("M", pid)] = ["1", "1", "2", "3"] if i % 3 else ["1"] * 4
        answers[("L", pid)] = ["1"]
        rows.append({"id": pid, "problem": "?", "answer": "1", "strategy": strategies[i % 4].key})
    res, _, backend, executor = go(strategies, answers, pd.DataFrame(rows), column="strategy", batch_size=100)
    assert backend.loads == ["S", "M", "L"]
    stats = executor.model_stats()
    assert {m: s["loads"] for m, s in stats.items()} == {"S": 1, "M": 1, "L": 1}
    assert stats["M"]["batches"] == 1  # cascade escalations and mv_M's problems share one batch
    assert stats["M"]["requests"] == 3 + 2  # mv_M: p1, p5, p9; cascade escalations: p0, p4
    assert stats["L"]["requests"] == 3 + 1 + 3  # plain_L; cascade p4 (M split); small_big p3, p7, p11
    assert stats["S"]["requests"] == 6
    assert set(res["strategy"]) == {s.key for s in strategies}
    assert res["correct"].all()


def test_batches_follow_batch_size():
    answers = {("M", f"p{i}"): ["1"] * 4 for i in range(10)}
    _, _, backend, executor = go(
        [strategy("mv", [tier("M", 4)])], answers, {f"p{i}": "1" for i in range(10)}, batch_size=3
    )
    assert executor.model_stats()["M"]["batches"] == 4 and backend.calls == 4 and backend.loads == ["M"]


def test_early_stop_in_rounds():
    s = strategy("mv", [tier("M", 8)], early_stop=EarlyStop(round_size=2))
    answers = {("M", "p"): ["4"] * 8, ("M", "q"): ["1", "2", "3", "4", "3", "3", "3", "3"]}
    res, samples, _, executor = go([s], answers, {"p": "4", "q": "3"})
    # p: 6-0 after three rounds beats the 2 samples left; q never leads by more than what is left
    assert res.loc["p", "samples"] == 6 and decisions(res.loc["p"])[0]["early_stopped"] is True
    assert decisions(res.loc["p"])[0]["rounds"] == 3 and signals(res.loc["p"])[0]["k"] == 6
    assert res.loc["q", "samples"] == 8 and decisions(res.loc["q"])[0]["early_stopped"] is False
    assert executor.model_stats()["M"]["early_stops"] == 1
    assert executor.model_stats()["M"]["batches"] == 4  # rounds are batches of their own


@pytest.mark.parametrize(
    ("policy", "expected"), [("last_tier", "2"), ("most_confident", "1"), ("pooled", "1")]
)
def test_final_answer_policies(policy, expected):
    tiers = [tier("S", 4, escalate_if="agreement < 0.8"), tier("M", 4)]
    answers = {("S", "p"): ["1", "1", "1", "2"], ("M", "p"): ["2", "2", "3", "1"]}
    res, *_ = go([strategy("c", tiers, final_answer=policy)], answers, {"p": "1"})
    assert res.loc["p", "final_answer"] == expected


def test_budget_stops_escalation():
    s = strategy("c", CASCADE, budget=Budget(max_samples_per_problem=6))
    res, *_ = go([s], {("S", "p"): ["1", "2", "3", "3"]}, {"p": "3"})
    assert res.loc["p", "stop_reason"] == "budget" and res.loc["p", "final_answer"] == "3"
    assert res.loc["p", "samples"] == 4


def test_bank_without_the_samples_is_a_clear_error():
    with pytest.raises(BackendError, match="lacks samples for model 'S', problem 'p'.*indices 2..3"):
        go([strategy("c", CASCADE)], {("S", "p"): ["1", "1"]}, {"p": "1"})
    with pytest.raises(BackendError, match="no samples of model 'S'"):
        go([strategy("c", CASCADE)], {("M", "p"): ["1"] * 4}, {"p": "1"})


def test_api_returns_the_input_frame_plus_result_columns():
    plan = make_plan([strategy("c", CASCADE)], MODELS)
    df = pd.DataFrame(
        {"question": ["a", "b"], "answer": ["Step.\n#### 4", "#### 2"], "extra": [1, 2]},
        index=pd.Index([10, 20], name="row"),
    )
    before = df.copy()
    bank = bank_from_answers({("S", "0"): ["4"] * 4, ("S", "1"): ["1", "2", "2", "2"]})
    out = run(plan, df, "replay", bank=bank, progress=False, equivalence="exact")
    pd.testing.assert_frame_equal(out[list(df.columns)], before)
    pd.testing.assert_frame_equal(df, before)
    assert list(out.index) == [10, 20]
    assert list(out["cascade_final_answer"]) == ["4", "2"] and list(out["cascade_correct"]) == [True, True]
    new = [c for c in out.columns if c not in df.columns]
    assert all(c.startswith("cascade_") for c in new) and "cascade_path" in new
    with pytest.raises(DataError, match="already has result columns"):
        run(plan, out, "replay", bank=bank, progress=False)


def test_api_needs_a_column_for_several_strategies():
    plan = make_plan([strategy("a", [tier("M", 1, 0.0)]), strategy("b", [tier("L", 1, 0.0)])], MODELS)
    with pytest.raises(DataError, match="2 strategies"):
        prepare(plan, pd.DataFrame({"problem": ["x"]}))
    with pytest.raises(DataError, match="no strategy 'zz'"):
        prepare(plan, pd.DataFrame({"problem": ["x"], "s": ["zz"]}), strategy_column="s")


def test_symbolic_answers_vote_together_and_grade_with_math_verify():
    answers = {("S", "p"): ["\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2", "x+1", "\\frac{\\sqrt{3}}{2}"]}
    res, *_ = go([strategy("c", CASCADE)], answers, {"p": "\\frac{\\sqrt 3}{2}"}, equivalence="math")
    row = res.loc["p"]
    assert votes(row) == [{"\\frac{\\sqrt{3}}{2}": 3, "x+1": 1}]
    assert path(row) == "0:stop" and row["correct"]


def test_a_run_becomes_a_bank_that_replays_it_exactly():
    from cascadec.runtime.backends.replay import bank_from_samples

    retry = RetryRule(max=1, when="agreement >= 0.5", extra_k=2, temperature=1.0)
    tiers = [tier("S", 4, escalate_if="agreement < 0.75", retry=retry), *CASCADE[1:]]
    answers = {
        ("S", "p"): ["1", "1", "2", "3", "1", "1"],
        ("S", "q"): ["5"] * 4,
        ("S", "r"): ["~1", "2", "3", "4"],
        ("M", "r"): ["4", "4", "4", "1"],
        ("M", "p"): ["1"] * 4,
    }
    first, samples, *_ = go([strategy("c", tiers)], answers, {"p": "1", "q": "5", "r": "4"})
    bank = bank_from_samples(samples)
    assert set(bank["temperature"]) == {0.7, 1.0}
    again, samples2, *_ = go([strategy("c", tiers)], None, {"p": "1", "q": "5", "r": "4"}, bank=bank)
    keep = [c for c in first.columns if c != "seconds"]
    pd.testing.assert_frame_equal(first[keep], again[keep])
    assert list(samples2["temperature"]) == list(samples["temperature"])


def test_the_runtime_never_imports_an_engine():
    import subprocess
    import sys

    code = (
        "import sys, cascadec.api, cascadec.runtime.session, cascadec.runtime.executor, cascadec.runtime.backends.replay, "
        "cascadec.cli_run\n"
        "from cascadec import run, load_results\n"
        "bad = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_runs_samples_replay_as_a_bank(tmp_path):
    """Record once, replay any plan: a run's samples.parquet is a bank for --backend replay."""
    answers = {}
    for i in range(6):
        answers[("S", str(i))] = ["1", "1", "1", "1"] if i % 2 else ["1", "2", "3", "1"]
        answers[("M", str(i))] = ["1", "1", "2", "1"]
        answers[("L", str(i))] = ["1"]
    problems = pd.DataFrame({"id": [str(i) for i in range(6)], "problem": ["?"] * 6, "answer": ["1"] * 6})
    plan = make_plan([strategy("c", CASCADE)], MODELS)
    first = run(plan, problems, "replay", bank=bank_from_answers(answers), out=tmp_path / "a", progress=False)
    # every recorded sample serves again: same plan, same outcome, now read from the run itself
    again = run(plan, problems, "replay", bank=tmp_path / "a" / "samples.parquet", progress=False)
    for col in ("cascade_final_answer", "cascade_path", "cascade_tiers", "cascade_models"):
        assert list(again[col]) == list(first[col])
    # a looser first tier on the same recording stops earlier, without a new sample
    loose = [tier("S", 4, escalate_if="agreement < 0.5", cost=1.5), *CASCADE[1:]]
    bank = tmp_path / "a" / "samples.parquet"
    looser = run(make_plan([strategy("c", loose)], MODELS), problems, "replay", bank=bank, progress=False)
    assert (first["cascade_tiers_used"] > 1).sum() == 3
    assert (looser["cascade_tiers_used"] == 1).all()
