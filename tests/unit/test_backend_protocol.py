"""One backend protocol (issue 21, item 4): capabilities are declared, never discovered; batch
collection over the stream is written once and gives the batch path's samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cascadec.errors import BackendError
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import BATCH_ONLY, Capabilities, GenerationRequest
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.backends.streaming import BatchStream, Collector, StreamEvent, as_stream, collect
from cascadec.runtime.testing import bank_from_answers

ROOT = Path(__file__).resolve().parents[2] / "cascadec"
M = "m"


def bank():
    return bank_from_answers({(M, "p"): ["1", "2", None, "2", "~3", "2"], (M, "q"): ["5"] * 6})


def requests():
    return [
        GenerationRequest("a", "p", "x", 4, 0.7, 1.0, 64, 0),
        GenerationRequest("b", "q", "y", 2, 0.7, 1.0, 64, 0, first_sample=3),
    ]


def test_every_shipped_backend_declares_its_capabilities():
    from cascadec.runtime.backends.openai_http import OpenAIBackend
    from cascadec.runtime.backends.ray_actors import RayBackend
    from cascadec.runtime.backends.vllm_offline import VLLMBackend

    assert ReplayBackend.capabilities == Capabilities(stream=True)
    assert VLLMBackend.capabilities == Capabilities(stream=True)
    assert RayBackend.capabilities == Capabilities(stream=True, stream_by_default=False)
    http = OpenAIBackend(base_url="http://127.0.0.1:9/v1")
    assert http.capabilities == Capabilities(stream=True, stream_by_default=False, endpoint=True)
    streamed = OpenAIBackend(base_url="http://127.0.0.1:9/v1", stream=True)
    assert streamed.capabilities.stream_by_default


def test_as_stream_reads_the_declaration():
    replay = ReplayBackend(bank())
    assert as_stream(replay) is replay
    batch = ReplayBackend(bank())
    batch.capabilities = BATCH_ONLY  # declared batch-only: wrapped, though it has submit/poll/abort
    assert isinstance(as_stream(batch), BatchStream) and isinstance(
        as_stream(batch, tokens=True), BatchStream
    )
    lazy = ReplayBackend(bank())
    lazy.capabilities = Capabilities(stream=True, stream_by_default=False)
    assert isinstance(as_stream(lazy), BatchStream) and as_stream(lazy, tokens=True) is lazy


@pytest.mark.parametrize("per_poll", [None, 1])
def test_collect_over_the_stream_gives_the_batch_samples(per_poll):
    batch = ReplayBackend(bank())
    batch.load(PlanModel(id=M, path=M, params=1.0))
    stream = ReplayBackend(bank(), per_poll=per_poll)
    stream.load(PlanModel(id=M, path=M, params=1.0))
    tokens: list[StreamEvent] = []
    got = collect(stream, requests(), stream_tokens=True, on_tokens=tokens.append)
    assert got == batch.generate(requests())
    assert tokens and all(not ev.finished for ev in tokens)
    wrapped = BatchStream(ReplayBackend(bank()))
    wrapped.load(PlanModel(id=M, path=M, params=1.0))
    assert collect(wrapped, requests()) == got


def test_the_collector_refuses_what_nobody_asked_for():
    c: Collector[int] = Collector("fake")
    req = requests()[1]
    c.expect(req)
    assert req.request_id in c and len(c) == 1
    assert c.add("b", 1, 11) is None
    with pytest.raises(BackendError, match="nobody asked for: b #1"):
        c.check(StreamEvent("b", 1))
    with pytest.raises(BackendError, match="nobody asked for: b #2"):
        c.check(StreamEvent("b", 2))
    with pytest.raises(BackendError, match="nobody asked for: zz #0"):
        c.check(StreamEvent("zz", 0))
    assert c.add("b", 0, 10) == [10, 11] and not c


def test_no_module_probes_a_backend_for_methods():
    """The executor, session, online termination and the server read ``capabilities``."""
    probe = re.compile(r"(getattr|hasattr)\(\s*(self\.)?(backend|stream)\b")
    files = ["runtime/executor.py", "runtime/session.py", "runtime/online.py", "serve/engines.py"]
    files += ["serve/cascade.py", "serve/app.py", "runtime/backends/streaming.py"]
    found = [f"{f}: {m.group(0)}" for f in files for m in probe.finditer((ROOT / f).read_text())]
    assert found == []
