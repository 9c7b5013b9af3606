"""DeepConf-online wired into runs: the spec switch, the compiler's checks, aborts through the
streaming protocol, and a replay of a run's own samples deciding exactly as the run did."""

from __future__ import annotations

import pandas as pd
import pytest
from compiler_specs import three
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadec.api import execute, prepare
from cascadec.compiler.checks import check_policies
from cascadec.compiler.explain import policy_lines
from cascadec.compiler.pipeline import compile_strategy
from cascadec.plan import EarlyStop, PlanOnline, PlanVote
from cascadec.runtime.backends.replay import ReplayBackend, bank_from_samples
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.online import OnlineMonitor, replay_trace, warmup_threshold
from cascadec.runtime.records import to_float32
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier
from cascadec.spec.vote import StopRule

K = 8
WINDOW = 2
N = 6


def test_online_reaches_the_plan_and_explain():
    from compiler_specs import CTX

    p, _models, _diags = compile_strategy(three(8, online={"warmup": 3, "keep": 0.8}), CTX)
    assert p.online == PlanOnline(warmup=3, keep=0.8)
    assert any("first 3 traces" in line for line in policy_lines(p))
    plain, _m, _d = compile_strategy(three(8), CTX)
    assert plain.online is None and "online" not in plain.model_dump_json()  # old plans keep their hash


def test_compiler_checks_online():
    from compiler_specs import CTX
    from test_compiler_checks import compiled as for_check

    def codes(s):
        return [d.code for d in check_policies(*for_check(s), CTX)]

    assert "W400" in codes(three(3, online={"warmup": 4}))  # 1.5B k3, 7B k4: all warm-up
    assert codes(three(8, online={"warmup": 4})) == []


def traces(pid: int, i: int) -> list[float]:
    """Token confidences: samples 3 and 5 of even problems collapse after 4 tokens."""
    n = 10 + i
    if pid % 2 == 0 and i in (3, 5):
        return [3.0] * 4 + [0.5] * (n - 4)
    return [3.0] * n


def bank() -> pd.DataFrame:
    answers = {}
    for p in range(N):
        gold = str(p)
        answers[("S", f"p{p}")] = [gold if i % 3 else "x" for i in range(K)]
    frame = bank_from_answers(answers)
    frame["confidences"] = [traces(int(r.problem_id[1:]), int(r.sample_index)) for r in frame.itertuples()]
    return frame


def plan(online: bool, **kw):
    return make_plan(
        [
            strategy(
                "mv",
                [tier("S", K)],
                vote=PlanVote(policy="weighted", window=WINDOW),
                online=PlanOnline(warmup=3, keep=0.9) if online else None,
                **kw,
            )
        ],
        {"S": 1.0},
    )


FRAME = pd.DataFrame(
    {"id": [f"p{p}" for p in range(N)], "problem": ["?"] * N, "answer": [str(p) for p in range(N)]}
)


def go(plan_, backend, schedule="continuous"):
    return execute(prepare(plan_, FRAME), backend, equivalence=Equivalence("exact"), schedule=schedule)


@pytest.mark.parametrize("schedule", ["continuous", "barrier"])
def test_weak_traces_are_aborted_mid_generation_and_do_not_vote(schedule):
    problems, samples, executor, _ = go(plan(True), ReplayBackend(bank(), piece=1), schedule)
    aborted = samples[samples["finish_reason"] == "abort"]
    want = {(f"p{p}", i) for p in range(0, N, 2) for i in (3, 5)}
    assert set(zip(aborted["id"], aborted["sample_index"], strict=True)) == want
    assert aborted["answer"].isna().all() and not aborted["votes"].any()
    # stopped where the window first fell below the threshold: token 5 (window 2 over 3.0, 0.5)
    assert (aborted["num_tokens"] == 5).all()
    _, fixed, _, _ = go(plan(False), ReplayBackend(bank(), piece=1), schedule)
    assert samples["num_tokens"].sum() < fixed["num_tokens"].sum()
    assert executor.stats["S"].aborted_samples == len(want)
    # the warm-up ran first, on its own
    assert (samples[samples["sample_index"] < 3]["finish_reason"] == "stop").all()
    assert problems["correct"].all()


def test_a_batch_backend_gets_the_same_decisions_with_every_token_counted():
    from cascadec.runtime.backends.base import BATCH_ONLY
    from cascadec.runtime.backends.streaming import BatchStream

    _, live, _, _ = go(plan(True), ReplayBackend(bank(), piece=1))

    class Batch:  # a backend that only answers whole batches (as Ray did)
        name = "batch"
        capabilities = BATCH_ONLY  # declared: no submit/poll/abort

        def __init__(self):
            self.inner = ReplayBackend(bank())

        def load(self, model):
            self.inner.load(model)

        def generate(self, requests, progress=None):
            return self.inner.generate(requests, progress)

        def close(self):
            self.inner.close()

    _, batch, executor, _ = go(plan(True), Batch())
    assert isinstance(executor.stream, BatchStream)
    key = ["id", "sample_index", "finish_reason", "answer"]
    pd.testing.assert_frame_equal(live[key], batch[key])
    cut = batch["finish_reason"] == "abort"
    assert (batch.loc[cut, "num_tokens"] > live.loc[cut, "num_tokens"]).all()  # generated whole


def test_a_replay_of_the_runs_own_samples_decides_alike():
    problems, samples, _, _ = go(
        plan(True, early_stop=EarlyStop(rule=StopRule.WEIGHTED, round_size=1, confidence=0.9)),
        ReplayBackend(bank(), piece=3),
    )
    again, resamples, _, _ = go(
        plan(True, early_stop=EarlyStop(rule=StopRule.WEIGHTED, round_size=1, confidence=0.9)),
        ReplayBackend(bank_from_samples(samples), piece=1),
    )
    cols = ["id", "final_answer", "samples", "tokens", "stop_reason"]
    pd.testing.assert_frame_equal(problems[cols], again[cols])
    key = ["id", "sample_index", "finish_reason", "num_tokens"]
    pd.testing.assert_frame_equal(samples[key], resamples[key])


@settings(max_examples=40)
@given(
    st.lists(st.lists(st.floats(0.1, 5.0), min_size=1, max_size=12), min_size=4, max_size=8),
    st.integers(1, 3),
)
def test_monitor_stops_a_trace_where_replay_trace_does(confs, window):
    """Token by token through the monitor = the recorded trace through replay_trace."""
    confs = [[to_float32(v) for v in c] for c in confs]  # what records and banks hold
    warm = confs[:3]
    threshold = warmup_threshold(warm, window, 90.0)
    for c in confs[3:]:
        want = replay_trace(c, threshold, window)
        monitor = OnlineMonitor()
        job, ask = _job_with_warmup(warm, window)
        stopped = None
        for t in range(1, len(c) + 1):
            if monitor.should_abort(job, ask, 0, [], c[:t]):
                stopped = t
                break
        assert (stopped is not None) == want.aborted
        if want.aborted:
            assert stopped == want.tokens


def _job_with_warmup(warm, window):
    from cascadec.runtime.data import Problem
    from cascadec.runtime.jobs import Job
    from cascadec.runtime.records import SampleRecord

    p = make_plan(
        [strategy("mv", [tier("S", 8)], vote=PlanVote(window=window), online=PlanOnline(warmup=3))],
        {"S": 1.0},
    )
    s = p.strategies[0]
    job = Job(Problem(id="p", problem="?", gold=None), s, s.tiers, Equivalence("exact"))
    records = [
        SampleRecord(
            id="p",
            strategy="mv",
            tier=0,
            model="S",
            round=0,
            phase="sample",
            sample_index=i,
            text="",
            answer=None,
            num_tokens=len(c),
            finish_reason="stop",
            mean_logprob=None,
            mean_entropy=None,
            seconds=0.0,
            temperature=0.7,
            token_logprobs=None,
            token_confidence=list(c),
        )
        for i, c in enumerate(warm)
    ]
    job.receive(records)
    return job, job.pending


def test_the_simulator_replays_online_strategies_through_the_runtime():
    from cascadec.runtime.data import Problem
    from cascadec.sim.simulate import needs_token_records, simulate

    p = plan(True)
    assert needs_token_records(p.strategies[0])
    problems = [Problem(f"p{i}", "?", str(i)) for i in range(N)]
    sim = simulate(p, bank(), problems, equivalence=Equivalence("exact"))
    rows, samples, _, _ = go(p, ReplayBackend(bank(), piece=1))
    assert list(sim.outcome.samples[0]) == list(rows["samples"])
    assert list(sim.outcome.tokens[0]) == list(rows["tokens"])
    assert samples["num_tokens"].sum() == rows["tokens"].sum()
