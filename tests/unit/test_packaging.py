"""The wheel ships the grammars, specs and problem sets, and an installed (non-editable) package can lint."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [whl] = out.glob("cascadec-*.whl")
    return whl


def test_wheel_contains_grammars_and_registries(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cascadec/_data/grammars/marker.lark" in names
    assert "cascadec/_data/specs/models/qwen2.5-math.yaml" in names
    for shipped in ("gsm8k.jsonl", "math500.jsonl", "aime24.jsonl", "amc23.jsonl", "SOURCES.md"):
        assert f"cascadec/datasets/{shipped}" in names  # the problem sets usable as --data NAME
    assert "cascadec/datasets/LICENSE.grade-school-math" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_lints_without_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    bad = tmp_path / "m.txt"
    bad.write_text("mv_1.5B_k0_t0.7\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [sys.executable, "-c", "import cascadec.resources as r; print(r.data_dir('grammars'))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(target))
    run = subprocess.run(
        [sys.executable, "-m", "cascadec", "lint", str(bad)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stderr
    assert f"{bad}:1:10: E102" in run.stdout


def test_lint_imports_no_torch_or_vllm(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text("mv_1.5B_k4_t0.7\n")
    code = (
        f"import sys\nfrom cascadec.cli import main\nsys.argv=['cascadec','lint',{str(f)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]\nassert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
