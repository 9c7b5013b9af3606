"""Run directories are owned: never the user's files, never an input, one writer at a time."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cascadec.errors import RunDirError
from cascadec.limits import atomic_write
from cascadec.runtime.rundir import LOCK_FILE, RunDirLock, check_out_dir, claim
from tests.unit import test_resume
from tests.unit.test_resume import cli, lines, reference

files = test_resume.files  # the same fixture: a plan, a data file and a bank


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(files, out, *extra, cwd=None, env=None):
    return subprocess.run(
        cli(files, out, *extra), capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


def test_out_is_the_data_directory(files):
    """`--data problems.parquet --out .` once replaced the input with the results."""
    pd.read_json(files / "data.jsonl", lines=True).to_parquet(files / "problems.parquet")
    before = snapshot(files)
    args = cli(files, files)
    args[args.index("--data") + 1] = str(files / "problems.parquet")
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "E502" in done.stderr and "not empty" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(files) == before


def test_out_that_is_not_a_run_is_refused(files):
    foreign = files / "mine"
    foreign.mkdir()
    (foreign / "plan.json").write_text("my own notes")
    (foreign / "problems.parquet").write_bytes(b"precious")
    before = snapshot(foreign)
    done = run_cli(files, foreign)
    assert done.returncode == 1 and "cascadec did not write (plan.json, problems.parquet)" in done.stderr
    assert snapshot(foreign) == before
    with pytest.raises(RunDirError, match="is a file"):
        check_out_dir(files / "data.jsonl")


def test_input_inside_a_run_directory_is_refused(files):
    out = files / "out"
    assert run_cli(files, out).returncode == 0
    before = snapshot(out)
    with pytest.raises(RunDirError, match="inside --out"):
        check_out_dir(out, [out / "samples.parquet"], resume=True)
    args = cli(files, out, "--resume")
    args[args.index("--bank") + 1] = str(out / "samples.parquet")  # its own samples as the bank
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "inside --out" in done.stderr
    assert snapshot(out) == before
    check_out_dir(out, [out / "plan.json"], resume=True)  # the run's own plan is only read


def test_second_writer_fails_fast_naming_the_holder(files):
    out = files / "out"
    env = {**os.environ, "CASCADEC_REPLAY_DELAY": "0.6"}
    first = subprocess.Popen(cli(files, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while lines(out / "samples.jsonl") < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None
        started = time.monotonic()
        second = run_cli(files, out, "--resume")
        assert time.monotonic() - started < 30
        assert second.returncode == 1, second.stderr
        assert f"pid {first.pid}" in second.stderr and "another cascadec run" in second.stderr
        replaced = run_cli(files, out, "--overwrite")
        assert replaced.returncode == 1 and f"pid {first.pid}" in replaced.stderr
    finally:
        first.wait(timeout=120)
        first.stderr.close()
    assert first.returncode == 0
    samples = pd.read_parquet(out / "samples.parquet")
    _, ref_samples = reference(files)
    assert len(samples) == len(ref_samples)  # no sample lost
    assert not (out / "samples.jsonl").exists()  # finished: the journals went
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_lock_is_released_when_the_holder_dies(tmp_path):
    code = f"from cascadec.runtime.rundir import RunDirLock; RunDirLock({str(tmp_path)!r}); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with claim(tmp_path) as lock:  # a dead holder never blocks
        info = json.loads((tmp_path / LOCK_FILE).read_text())
        assert info["pid"] == os.getpid()
        with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
            RunDirLock(tmp_path)
    assert lock._lock is None


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "t.parquet"
    target.write_bytes(b"old")

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1
