"""``cascadec serve --engines local``: the server starts its own vLLM engine (one zoo model)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from serve_helpers import free_port, wait_healthy

pytestmark = pytest.mark.integration
openai = pytest.importorskip("openai")
pytest.importorskip("vllm")

ROOT = Path(__file__).resolve().parents[2]


def test_local_engines_answer(tmp_path):
    zoo = yaml.safe_load((ROOT / "specs" / "models" / "zoo.yaml").read_text())
    small = dict(zoo["models"][0], path=str(ROOT / "specs" / "models" / zoo["models"][0]["path"]))
    registry = tmp_path / "one.yaml"
    registry.write_text(yaml.safe_dump({**zoo, "models": [small]}))
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "cascadec", "serve", "--engines", "local", "--models", str(registry)]
    command += ["--port", str(port), "--equivalence", "exact"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc, log, seconds=300)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        r = client.completions.create(model="mv_0.034M_k4_t0.7", prompt="3+4=")
        assert r.cascade["final_answer"] == "7" and r.cascade["samples"] == 4
        assert r.choices[0].text.endswith("\\boxed{7}")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text()
