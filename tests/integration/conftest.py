"""Fixtures shared by the integration tests: one set of real ``vllm serve`` endpoints per session.

Starting a ``vllm serve`` costs tens of seconds of CPU on this kind of machine, so the HTTP
backend's tests and the server's tests share one pair (the smallest and the largest zoo model),
started by ``runtime/launch_vllm_serve.sh`` (so the script is tested too) on loopback, stopped
when the session ends.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "runtime" / "launch_vllm_serve.sh"
ZOO = ROOT / "specs" / "models" / "zoo.yaml"
SERVED = "0.034M,1.1M"  # a cascade's two tiers


@pytest.fixture(scope="session")
def vllm_serve(tmp_path_factory) -> Path:
    """``endpoints.json`` of ``vllm serve`` endpoints for the zoo's 0.034M and 1.1M models."""
    pytest.importorskip("openai")
    state = tmp_path_factory.mktemp("vllm-serve")
    env = {**os.environ, "MODELS": SERVED, "PORT": str(free_port()), "STATE_DIR": str(state)}
    env |= {"WAIT_S": "300", "PYTHON": sys.executable}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(ZOO)], env=env, capture_output=True, text=True
    )
    try:
        logs = "".join(p.read_text(errors="replace")[-3000:] for p in state.glob("*.log"))
        assert started.returncode == 0, started.stdout + started.stderr + logs
        yield state / "endpoints.json"
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True)
