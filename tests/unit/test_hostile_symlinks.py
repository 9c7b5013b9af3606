"""A symlink to a secret, given as a table to lint, never has its content echoed.

Linting a pull request's files in CI prints to a public log: a ``markers.csv`` planted as a
symlink to a credentials file once had its first line quoted as "the columns". A first line is
now quoted only when it looks like a header (two or more short column names).
"""

import subprocess
import sys

import pytest

SECRET = "sk-live-ABCDEF123456"


@pytest.mark.parametrize(
    "content", [f"OPENAI_API_KEY={SECRET}\n", f"{SECRET}\n", f"user:{SECRET}:19000:0:99999:7:::\n"]
)
def test_lint_never_echoes_a_symlinked_secret(tmp_path, content):
    secret = tmp_path / "credentials"
    secret.write_text(content)
    link = tmp_path / "markers.csv"
    link.symlink_to(secret)
    proc = subprocess.run(
        [sys.executable, "-m", "cascadec", "lint", str(link), "--column", "strategy"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (1, 2), proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "no column 'strategy'" in proc.stdout + proc.stderr


def test_a_real_header_is_still_listed(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("id,marker\n1,mv_1.5B_k8_t0.7\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cascadec", "lint", str(table), "--column", "strategy"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "columns are id, marker" in proc.stderr
