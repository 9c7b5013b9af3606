"""Every way a command exits non-zero prints a registered code (issue 21): usage errors (E900)
whether cascadec or click finds them, I/O (E901), bad content (E1xx-E5xx) — printed in one
place (``cascadec.errors.error_exit``), through the real entry point (``cascadec.cli.main``)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from cascadec.errors import CODES, ExitCode, error_text

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"\b([EW]\d{3})\b")

BAD = [
    "run mv_7B_k4_t0.7",  # issue 21's example: --data missing
    "run mv_7B_k4_t0.7 --data p.jsonl --backend nope --out o",
    "run mv_3B_k4_t0.7 --data p.jsonl --dry-run",
    "run nofile.yaml --data p.jsonl --dry-run",
    "run mv_7B_k4_t0.7 --data missing.jsonl --dry-run",
    "run --bogus",
    "compile",
    "compile --marker mv_7B_k4_t0.7 --check -o x.json",
    "compile bad.yaml",
    "explain",
    "explain mv_3B_k1_t0.0",
    "schema nope",
    "lint --format x p.jsonl",
    "lint bad.yaml",
    "simulate",
    "simulate mv_7B_k4_t0.7 --bank nobank --data p.jsonl",
    "calibrate nospace.yaml --bank b --data p.jsonl --out o.yaml",
    "calibrate nospace.yaml --bank b --data p.jsonl --out o.yaml --equivalence x",
    "calibrate",
    "optimize --space nospace.yaml --bank b --data p.jsonl",
    "report --out r",
    "report x --out r --bank b",
    "bank build --data p.jsonl --out bk --backend nope",
    "bank build --data p.jsonl --out bk --temperatures a,b",
    "bank info nobank",
    "bank nope",
    "data show nofile.jsonl",
    "data list --format x",
    "serve --engines nope",
    "serve --log-level loud",
    "zoo sample --n 0",
    "zoo nope",
    "router",
    "router train --bank b --data p.jsonl --out r.npz --equivalence x",
    "demo --bogus",
    "nope",
    "--bogus",
    "",
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "p.jsonl").write_text('{"id": "1", "problem": "2+2", "answer": "4"}\n')
    (tmp_path / "bad.yaml").write_text("x: [\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_main(args: list[str], monkeypatch, capsys, *, stdout: bool = False) -> tuple[int, str]:
    """(exit status, stderr) of ``cascadec ARGS`` (stdout too: lint prints its findings there)."""
    from cascadec.cli import main

    monkeypatch.setattr(sys, "argv", ["cascadec", *args])
    with pytest.raises(SystemExit) as done:
        main()
    code = done.value.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 1), captured.err + (captured.out if stdout else "")


@pytest.mark.parametrize("line", BAD, ids=lambda line: line or "<no command>")
def test_every_failing_command_prints_a_registered_code(line, folder, monkeypatch, capsys):
    status, err = run_main(line.split(), monkeypatch, capsys, stdout=line.startswith("lint"))
    assert status != 0
    codes = [c for c in CODE.findall(err) if c.startswith("E")]
    assert codes, f"no code in: {err!r}"
    assert all(c in CODES for c in codes), codes
    first = CODES[codes[0]]
    assert status == first.exit, (status, err)  # the code decides the exit status
    assert "Traceback" not in err


def test_issue_21s_example_is_a_usage_error_with_its_code(folder, monkeypatch, capsys):
    status, err = run_main(["run", "mv_7B_k4_t0.7"], monkeypatch, capsys)
    assert status == ExitCode.USAGE and err == "error: E900 --data FILE is required\n"


def test_clicks_own_usage_errors_carry_e900(folder, monkeypatch, capsys):
    status, err = run_main(["calibrate"], monkeypatch, capsys)
    assert status == 2 and err.startswith("error: E900 cascadec calibrate: Missing")


def test_help_and_version_exit_0(folder, monkeypatch, capsys):
    assert run_main(["--version"], monkeypatch, capsys)[0] == 0
    assert run_main(["run", "--help"], monkeypatch, capsys)[0] == 0


def test_error_text_gives_every_kind_a_code():
    from cascadec.errors import DataError, UsageError

    assert error_text(UsageError("--x is required")) == "error: E900 --x is required"
    assert error_text(DataError("bad rows", where="t.csv")) == "error: t.csv: E500 bad rows"
    assert error_text(FileNotFoundError(2, "No such file or directory", "f.txt")) == (
        "error: f.txt: E901 No such file or directory"
    )
    assert error_text(ZeroDivisionError("x")).startswith("cascadec: E999 internal error: ZeroDivisionError")


def test_http_statuses_come_from_the_registry():
    from cascadec.errors import UpstreamUnavailable

    assert CODES["E600"].status == 404 and CODES["E604"].status == 429 and CODES["E999"].status == 500
    assert CODES["E603"].status == 502 and UpstreamUnavailable.http == 503
    assert CODES["E200"].status == 400  # bad input in a request


def _calls(tree: ast.AST, dotted: str) -> list[int]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == dotted:
            out.append(node.lineno)
    return out


def test_errors_are_printed_in_one_place():
    """No command prints its own 'error: ...' line or raises click's uncoded BadParameter."""
    found = []
    for path in sorted((ROOT / "cascadec").rglob("*.py")):
        if path.name == "errors.py" and path.parent.name == "cascadec":
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        found += [f"{path.name}:{n}: typer.BadParameter" for n in _calls(tree, "typer.BadParameter")]
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "sys.stderr.write" and node.args:
                arg = ast.unparse(node.args[0])
                if re.match(r"""^f?['"]error: """, arg):
                    found.append(f"{path.name}:{node.lineno}: {arg[:40]}")
    assert found == []
