"""The OpenAI-compatible HTTP backend against a real ``vllm serve`` on loopback.

The servers are the session's pair of zoo models (conftest.py: started by
``runtime/launch_vllm_serve.sh``, so the script is tested too). With the same seeds, the HTTP
backend must return exactly the offline backend's samples: same texts, token counts, logprobs
and entropies, whether asked in batches, from asyncio (what ``cascadec serve`` uses) or streamed.
"""

import json
import subprocess
import sys

import pandas as pd
import pytest

import cascadec
from cascadec.errors import BackendError
from cascadec.registry import load_registry, named_registry
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.backends.openai_http import OpenAIBackend
from cascadec.zoo.task import sample_problems

pytestmark = pytest.mark.integration

MARKER = "mv_0.034M_k4_t0.7"
N = 30


@pytest.fixture(scope="module")
def server(vllm_serve):
    return vllm_serve  # the session's vllm serve pair (conftest.py)


@pytest.fixture(scope="module")
def problems():
    return pd.DataFrame(sample_problems(N, 515))


@pytest.fixture(scope="module")
def backend(server):
    b = OpenAIBackend(endpoints=server)
    yield b
    b.close()


def _samples(out):
    s = cascadec.load_results(out, samples=True).sort_values(["id", "sample_index"]).reset_index(drop=True)
    return s[["id", "sample_index", "text", "num_tokens", "finish_reason", "mean_logprob", "mean_entropy"]]


def test_same_samples_as_the_offline_backend(server, backend, problems, tmp_path):
    pytest.importorskip("vllm")
    from cascadec.runtime.backends.vllm_offline import VLLMBackend

    zoo = named_registry("zoo")
    http = cascadec.run(MARKER, problems, backend=backend, models=zoo, out=tmp_path / "http", progress=False)
    offline_backend = VLLMBackend(log_dir=tmp_path / "logs")
    try:
        cascadec.run(
            MARKER, problems, backend=offline_backend, models=zoo, out=tmp_path / "offline", progress=False
        )
    finally:
        offline_backend.close()
    assert (http["cascade_samples"] == 4).all()
    assert http["cascade_correct"].mean() >= 0.4
    pd.testing.assert_frame_equal(_samples(tmp_path / "http"), _samples(tmp_path / "offline"))


def test_later_samples_continue_the_numbering(backend):
    entry = sorted(load_registry(named_registry("zoo")).models, key=lambda e: e.params)[0]
    from cascadec.compiler import compile_markers

    plan, _ = compile_markers([MARKER], registry=load_registry(named_registry("zoo")))
    backend.load(plan.models[entry.id])

    def ask(n, first):
        request = GenerationRequest("r", "p", "48+75=", n, 1.0, 1.0, 24, 1234, first_sample=first)
        return [s.text for s in backend.generate([request])[0]]

    four = ask(4, 0)
    assert ask(2, 2) == four[2:], "samples 2..3 asked later are samples 2..3 of one request"
    assert ask(4, 0) == four, "same seed, same samples"


def test_overlong_prompt_is_a_truncated_empty_sample(backend):
    request = GenerationRequest("r", "p", "1+" * 200 + "1=", 2, 0.7, 1.0, 16, 1)
    samples = backend.generate([request])[0]
    assert [(s.text, s.finish_reason) for s in samples] == [("", "length")] * 2


def test_endpoint_serving_another_model_is_a_clear_error(server):
    url = json.loads(server.read_text())["cascadec-zoo/arith-0.034M"]
    from cascadec.compiler import compile_markers

    plan, _ = compile_markers(["1.1M"], registry=load_registry(named_registry("zoo")))
    with pytest.raises(BackendError, match="serves cascadec-zoo/arith-0.034M.*not 'cascadec-zoo/arith-1.1M'"):
        OpenAIBackend(base_url=url).load(plan.models["cascadec-zoo/arith-1.1M"])


def test_cli_runs_with_an_endpoints_file(server, problems, tmp_path):
    data = tmp_path / "p.jsonl"
    problems.head(10).to_json(data, orient="records", lines=True)
    command = [
        sys.executable,
        "-m",
        "cascadec",
        "run",
        "--marker",
        MARKER,
        "--models",
        "zoo",
        "--data",
        str(data),
    ]
    command += ["--out", str(tmp_path / "run"), "--backend", "openai", "--endpoints", str(server)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(pd.read_parquet(tmp_path / "run" / "problems.parquet")) == 10


def test_greedy_with_n_above_one_returns_copies(backend):
    from cascadec.compiler import compile_markers

    plan, _ = compile_markers([MARKER], registry=load_registry(named_registry("zoo")))
    backend.load(plan.models["cascadec-zoo/arith-0.034M"])
    samples = backend.generate([GenerationRequest("r", "p", "7+5=", 3, 0.0, 0.8, 24, 9)])[0]
    assert len(samples) == 3 and len({s.text for s in samples}) == 1
    assert samples[0].text.endswith("\\boxed{12}")


def test_rounds_and_retries_replay_exactly_from_a_bank_recorded_at_once(backend, problems, tmp_path):
    """Through vllm serve: a vote asked in rounds (early stop, retries) draws a bank's samples."""
    from seed_checks import check_rounds_replay_from_a_bank

    check_rounds_replay_from_a_bank(backend, ["0.034M"], problems, tmp_path)


def test_streamed_samples_equal_batched_ones_and_abort(server):
    """``stream=True``: one streamed completion per sample gives the batch's samples exactly;
    an abort closes a sample's stream early."""
    import time

    from cascadec.compiler import compile_markers

    plan, _ = compile_markers([MARKER], registry=load_registry(named_registry("zoo")))
    model = next(iter(plan.models.values()))
    streamed = OpenAIBackend(endpoints=server, stream=True)
    try:
        streamed.load(model)
        reqs = [
            GenerationRequest(f"r{i}", "p", f"{i}+{7 * i}=", 3, 0.7, 1.0, 24, 99 + i, first_sample=i % 2)
            for i in range(4)
        ] + [GenerationRequest("g", "p", "5+5=", 2, 0.0, 1.0, 24, 7)]
        batch = streamed.generate(reqs)
        streamed.submit(reqs)
        got, deadline = {}, time.monotonic() + 120
        while streamed._in_flight and time.monotonic() < deadline:
            for ev in streamed.poll(1.0):
                got[ev.request_id, ev.index] = ev.sample
        for req, row in zip(reqs, batch, strict=True):
            mine = [got[req.request_id, i] for i in range(req.n)]
            assert [(s.text, s.num_tokens, s.finish_reason) for s in mine] == [
                (s.text, s.num_tokens, s.finish_reason) for s in row
            ]
            for a, b in zip(mine, row, strict=True):
                assert list(a.logprobs) == pytest.approx(list(b.logprobs), abs=1e-4)
        long = GenerationRequest("long", "p", "1+2=", 1, 1.0, 1.0, 200, 5)
        streamed.submit([long], stream_tokens=True)
        finished = None
        while finished is None:
            for ev in streamed.poll(30):
                if ev.sample is None:
                    streamed.abort("long")
                else:
                    finished = ev.sample
        assert finished.finish_reason in ("abort", "stop", "length")  # a short answer may beat the abort
    finally:
        streamed.close()


def test_online_termination_closes_weak_streams_early(backend):
    """An online run streams through ``vllm serve`` even with the batch default (``stream=False``):
    streamed logprobs and top logprobs give the token confidences; an abort closes a stream."""
    from online_checks import check_online_saves_tokens

    from cascadec.compiler import compile_markers

    plan, _ = compile_markers([MARKER], registry=load_registry(named_registry("zoo")))
    frame = pd.DataFrame(sample_problems(6, 717))
    check_online_saves_tokens(
        backend,
        next(iter(plan.models.values())),
        frame,
        prompt=plan.strategies[0].prompt,
        max_tokens=32,
        saving_seen=False,
    )
    assert backend.capabilities.stream_by_default is False


def test_asyncio_asks_and_streams_equal_batched_samples(server):
    """``acomplete`` and ``astream`` (``cascadec serve``'s path) send the batch path's request:
    the same samples, token counts and logprobs, the streamed text passed on piece by piece."""
    import asyncio

    from cascadec.compiler import compile_markers

    plan, _ = compile_markers([MARKER], registry=load_registry(named_registry("zoo")))
    b = OpenAIBackend(endpoints=server)
    try:
        b.load(next(iter(plan.models.values())))
        reqs = [
            GenerationRequest(f"r{i}", "p", f"{i}+{9 * i}=", 3, 0.7, 1.0, 24, 50 + i, i) for i in range(3)
        ]
        greedy = GenerationRequest("g", "p", "12+30=", 1, 0.0, 1.0, 24, 3)
        batch = b.generate([*reqs, greedy])
        pieces: list[str] = []

        async def on_delta(text: str) -> None:
            pieces.append(text)

        async def both():
            try:
                asked = await asyncio.gather(*(b.acomplete(r) for r in reqs))
                return [*asked, [await b.astream(greedy, on_delta)]]
            finally:
                await b.aclose()  # the asyncio client belongs to this loop

        got = asyncio.run(both())
        for mine, theirs in zip(got, batch, strict=True):
            assert [(s.text, s.num_tokens, s.finish_reason) for s in mine] == [
                (s.text, s.num_tokens, s.finish_reason) for s in theirs[: len(mine)]
            ]
            for x, y in zip(mine, theirs, strict=False):
                assert list(x.logprobs) == pytest.approx(list(y.logprobs), abs=1e-4)
        assert "".join(pieces) == got[-1][0].text and len(pieces) > 1
    finally:
        b.close()
