"""The streaming, cancellable protocol and continuous scheduling, on the real replay backend."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadec.api import execute, prepare
from cascadec.plan import EarlyStop, RetryRule
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.backends.streaming import BatchStream, as_stream
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import bank_from_answers, make_plan, plan_model, strategy, tier

MODELS = {"S": 1.5, "L": 72.0}
N = 12


def answers():
    """Problems that stop early, go the full k, retry, or escalate — different lengths of work."""
    out = {}
    for i in range(N):
        gold = str(i)
        kind = i % 4
        if kind == 0:
            seq = [gold] * 12  # decided after two rounds
        elif kind == 1:
            seq = [gold, "x", gold, "y", gold, gold, "z", gold, gold, gold, gold, gold]
        elif kind == 2:
            seq = [gold, "a", "b", "c", gold, "d", gold, gold, gold, gold, gold, gold]
        else:
            seq = ["p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "o"]
        out[("S", f"p{i}")] = seq
        out[("L", f"p{i}")] = [gold]
    return out


PLAN = make_plan(
    [
        strategy(
            "c",
            [
                tier(
                    "S",
                    4,
                    escalate_if="agreement < 0.75",
                    retry=RetryRule(max=1, when="agreement >= 0.5", extra_k=4),
                ),
                tier("L", 1, 0.0),
            ],
            early_stop=EarlyStop(round_size=2),
        )
    ],
    MODELS,
)
FRAME = pd.DataFrame(
    {"id": [f"p{i}" for i in range(N)], "problem": ["?"] * N, "answer": [str(i) for i in range(N)]}
)


def go(schedule, backend=None, **kw):
    backend = backend or ReplayBackend(bank_from_answers(answers()), per_poll=3)
    problems, samples, executor, _ = execute(
        prepare(PLAN, FRAME), backend, equivalence=Equivalence("exact"), schedule=schedule, **kw
    )
    return problems, samples, executor, backend


def test_continuous_and_barrier_give_the_same_results():
    cont, cont_samples, cont_exec, _ = go("continuous")
    barr, barr_samples, barr_exec, _ = go("barrier")
    cols = [c for c in cont.columns if c != "seconds"]
    pd.testing.assert_frame_equal(cont[cols], barr[cols])
    cols = [c for c in cont_samples.columns if c != "seconds"]
    pd.testing.assert_frame_equal(cont_samples[cols], barr_samples[cols])
    assert set(cont["stop_reason"]) == {"confident", "last_tier"} and cont["correct"].all()
    # the same model loads, once each, either way
    assert cont_exec.load_order == barr_exec.load_order == ["S", "L"]


def in_flight_at_submit(schedule):
    """How many samples were still running each time the executor submitted requests."""
    backend = ReplayBackend(bank_from_answers(answers()), per_poll=3)
    running = []
    submit = backend.submit

    def spy(reqs, stream_tokens=False):
        running.append(len(backend._running))
        submit(reqs, stream_tokens)

    backend.submit = spy
    _, _, executor, _ = go(schedule, backend=backend)
    return running, executor


def test_continuous_submits_without_waiting_for_the_batch():
    """Samples arrive three a poll: continuous scheduling sends a problem's next round while
    others still run; the barrier only submits into an idle engine."""
    cont, cont_exec = in_flight_at_submit("continuous")
    barr, barr_exec = in_flight_at_submit("barrier")
    assert cont_exec.stats["S"].samples == barr_exec.stats["S"].samples
    assert any(n > 0 for n in cont[1:]) and cont_exec.stats["S"].batches > barr_exec.stats["S"].batches
    assert all(n == 0 for n in barr)


def test_batch_size_bounds_requests_in_flight():
    backend = ReplayBackend(bank_from_answers(answers()), per_poll=1)
    submitted = []
    submit = backend.submit
    backend.submit = lambda reqs, stream_tokens=False: (
        submitted.append(len(reqs)),
        submit(reqs, stream_tokens),
    )
    go("continuous", backend=backend, batch_size=2)
    assert max(submitted) <= 2


class AbortLongTraces:
    """An online monitor: stop every sample of problem p1 once it streamed 4 tokens."""

    def __init__(self):
        self.seen = []

    def should_abort(self, job, ask, index, logprobs, confidences):
        self.seen.append((job.problem.id, index, len(logprobs)))
        return job.problem.id == "p1" and len(logprobs) >= 4


def test_a_monitor_aborts_samples_mid_generation():
    monitor = AbortLongTraces()
    problems, samples, executor, _ = go("continuous", monitor=monitor)
    p1 = samples[samples["id"] == "p1"]
    assert (p1["finish_reason"] == "abort").all() and p1["answer"].isna().all() and not p1["votes"].any()
    assert (p1["num_tokens"] == 4).all()  # stopped after the tokens it streamed
    others = samples[samples["id"] != "p1"]
    assert (others["finish_reason"] == "stop").all()
    assert executor.stats["S"].aborted_samples == len(p1[p1["model"] == "S"])
    assert any(pid != "p1" and n > 0 for pid, _, n in monitor.seen)  # every sample streamed its tokens
    row = problems.set_index("id").loc["p1"]
    assert row["tiers"][0]["signals"]["no_answer"] == 1.0 and list(row["models"]) == ["S", "L"]


def request(rid, n=2, first=0):
    return GenerationRequest(rid, "p0", "?", n, 0.7, 1.0, 16, 1, first)


def test_batch_stream_wraps_a_batch_backend():
    replay = ReplayBackend(bank_from_answers({("S", "p0"): ["1", "2", "3", "4"]}))
    stream = BatchStream(replay)
    stream.load(plan_model("S", 1.5))
    assert stream.poll() == []
    stream.submit([request("a"), request("b", first=2)])
    stream.abort("b", 1)
    events = stream.poll()
    got = {(e.request_id, e.index): e.sample for e in events}
    assert [s.text for s in (got["a", 0], got["a", 1], got["b", 0])] == [
        s.text
        for s in replay.generate([request("a"), request("b", first=2)])[0]
        + replay.generate([request("b", first=2)])[0][:1]
    ]
    assert got["b", 1].finish_reason == "abort"
    stream.submit([request("c")])
    stream.abort("c")
    assert {e.sample.finish_reason for e in stream.poll()} == {"abort"}


def test_as_stream_keeps_native_streams():
    replay = ReplayBackend(bank_from_answers({("S", "p0"): ["1"]}))
    assert as_stream(replay) is replay
    with pytest.raises(ValueError):
        ReplayBackend(bank_from_answers({("S", "p0"): ["1"]}), per_poll=0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["1", "2", "3", None]), min_size=12, max_size=12), min_size=1, max_size=6
    ),
    st.integers(1, 7),
    st.integers(1, 5),
)
def test_any_arrival_order_gives_the_barrier_results(small_answers, per_poll, batch_size):
    """Whatever order samples arrive in and however few may be in flight, continuous scheduling
    ends every problem exactly as the barrier does (the decisions are per problem)."""
    bank = {}
    for i, seq in enumerate(small_answers):
        bank[("S", f"p{i}")] = seq
        bank[("L", f"p{i}")] = ["1"]
    frame = FRAME.iloc[: len(small_answers)]
    runs = []
    for schedule in ("barrier", "continuous"):
        backend = ReplayBackend(bank_from_answers(bank), per_poll=per_poll)
        problems, samples, _, _ = execute(
            prepare(PLAN, frame),
            backend,
            equivalence=Equivalence("exact"),
            schedule=schedule,
            batch_size=batch_size,
        )
        runs.append((problems.drop(columns="seconds"), samples.drop(columns="seconds")))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])
