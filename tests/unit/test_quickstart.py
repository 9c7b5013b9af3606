"""The README's quickstart runs (issue 23, "a quickstart that runs").

Every command of the section "From your problems to a certified cascade you can serve" is run
as written, in a fresh temporary folder, one subprocess each, its exit code checked: bank import
of real model outputs, calibrate, simulate, report, a replay run, and serve (replay engines)
answering one request through the OpenAI endpoint. No vLLM. The times it measured are printed
(``-s``) and are the ones the README quotes.
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]
HEADING = "## From your problems to a certified cascade you can serve"


def quickstart() -> list[str]:
    """The commands of the section's first ``sh`` block, one per line (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(HEADING) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, body: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=body.encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def test_the_quickstart_runs_from_a_fresh_folder(tmp_path):
    commands = quickstart()
    assert commands[0].startswith("REPO=")
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "REPO": str(ROOT),
        "CASCADEC_CACHE_DIR": str(tmp_path / "cache"),  # a fresh user's: nothing cached
    }
    port = _free_port()
    timings: list[tuple[str, float]] = []
    server = None
    start = time.perf_counter()
    try:
        for line in commands[1:]:
            t0 = time.perf_counter()
            if line.startswith("cascadec serve"):
                assert line.endswith("&")
                argv = shlex.split(line[:-1].replace("--port 8000", f"--port {port}"))
                server = subprocess.Popen(
                    argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
                while True:  # up once /health answers
                    assert server.poll() is None, server.stdout.read()
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                        break
                    except OSError:
                        time.sleep(0.2)
                    assert time.perf_counter() - t0 < 120, "serve did not start"
            elif line.startswith("curl"):
                body = re.search(r"-d '(.*)'", line).group(1)
                answer = _post(port, body)
                cascade = answer["cascade"]
                assert cascade["strategy"] == "cascade" and cascade["final_answer"] == "18"
                assert answer["choices"][0]["message"]["content"]
            else:
                done = subprocess.run(
                    ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
                )
                assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            timings.append((line.split(" --")[0][:60], time.perf_counter() - t0))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    total = time.perf_counter() - start
    for what, seconds in timings:
        print(f"{seconds:6.1f} s  {what}")
    print(f"{total:6.1f} s  in all")
    assert (tmp_path / "served" / "cascade.yaml").is_file()
    assert (tmp_path / "report" / "report.md").is_file()
    assert (tmp_path / "run" / "problems.parquet").is_file()
    cert = json.loads((tmp_path / "certificate.json").read_text())
    assert cert["held_out_problems"] > 0
