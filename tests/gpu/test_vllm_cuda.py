"""The vLLM offline backend on CUDA: the CPU integration checks, run on a GPU.

Skipped without a GPU (see conftest.py). The tiny model runs in float32 so greedy answers
and seeded samples do not depend on batch composition; compiled mode (the CUDA default)
and eager mode are both loaded once.
"""

from __future__ import annotations

import pytest
import vllm_checks as checks
from tiny_model import MAX_LEN, build_tiny_model

from cascadec.plan import PlanModel
from cascadec.runtime.backends import make_backend
from cascadec.runtime.backends.vllm_offline import VLLMBackend

# Small: the tiny model needs a few MiB, and other jobs may share the GPU.
MEMORY = 0.2


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2-cuda"))


def tiny(tiny_dir, model_id: str = "tiny-qwen2") -> PlanModel:
    return PlanModel(
        id=model_id,
        path=str(tiny_dir),
        params=4.6e4,
        max_model_len=MAX_LEN,
        dtype="float32",
        gpu_memory_utilization=MEMORY,
    )


@pytest.fixture(scope="module", params=["eager", "compiled"])
def backend(request, tiny_dir, tmp_path_factory):
    b = make_backend(
        "vllm",
        enforce_eager=request.param == "eager",
        logprobs=checks.LOGPROBS,
        log_dir=tmp_path_factory.mktemp("vllm-logs"),
    )
    b.load(tiny(tiny_dir))
    yield b
    b.close()


def test_loaded_on_cuda(backend):
    assert backend.info["platform"] == "cuda"
    assert backend.info["max_model_len"] == MAX_LEN
    assert backend.info["engine_args"]["gpu_memory_utilization"] == MEMORY


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


def test_bad_model_path_is_backend_error(tmp_path):
    checks.check_bad_paths(tmp_path)


def test_worker_death_frees_the_gpu(tiny_dir, tmp_path):
    backend = VLLMBackend(enforce_eager=True, log_dir=tmp_path)
    checks.check_worker_death(backend, tiny(tiny_dir, "tiny-qwen2-b"))


def test_switch_models_and_close(tiny_dir, tmp_path):
    backend = VLLMBackend(enforce_eager=True, log_dir=tmp_path)
    backend.load(tiny(tiny_dir))
    checks.check_switch_and_close(backend, tiny(tiny_dir, "tiny-qwen2-c"))
