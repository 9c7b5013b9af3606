"""One registry of codes, one exit-code rule, the README's code table generated from the registry."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascadec.errors import (
    CODES,
    CascadecError,
    DataError,
    ExitCode,
    InputFileError,
    RunDirError,
    code_table,
    exit_code,
)

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"\b[EW]\d{3}\b")


def _strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_every_code_the_source_mentions_is_registered():
    unknown = []
    for path in sorted((ROOT / "cascadec").rglob("*.py")):
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            unknown += [f"{path.relative_to(ROOT)}:{line}: {c}" for c in CODE.findall(text) if c not in CODES]
    assert unknown == [], "register new codes in cascadec/errors.py CODES, then: python tools/generate.py"


def test_no_error_message_carries_its_code_inside():
    """Codes travel as ``code=``, and ``str(error)`` prints them once, in one place."""
    hidden = []
    for path in sorted((ROOT / "cascadec").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call) and node.args and getattr(node.func, "id", "").endswith("Error")
            ):
                continue
            texts = [t for _, t in _strings(node.args[0])]
            if any(CODE.search(t) for t in texts):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert hidden == [], "write Error('message', code='E5xx', where=path): str(error) adds the code"


def test_readme_code_table_is_generated_from_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- codes:start[^>]*-->\n(.*?)<!-- codes:end -->", readme, re.S)
    assert block, "README.md lacks the generated code table"
    assert block.group(1) == code_table(), "regenerate it: python tools/generate.py"
    assert all(f"| {code} |" in block.group(1) for code in CODES)


def test_registry_is_well_formed():
    assert all(re.fullmatch(r"[EW]\d{3}", c) and CODES[c].code == c for c in CODES)
    assert {c.exit for c in CODES.values() if c.severity == "error"} == set(ExitCode) - {ExitCode.OK}
    with pytest.raises(ValueError, match="not registered"):
        CascadecError("made up", code="E777")


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (None, ExitCode.OK),
        (DataError("bad row"), ExitCode.FINDINGS),
        (RunDirError("not yours"), ExitCode.FINDINGS),
        (InputFileError("no such data file"), ExitCode.USAGE),
        (CascadecError("give one of A or B"), ExitCode.USAGE),
        (FileNotFoundError(2, "No such file"), ExitCode.USAGE),
        (KeyError("a bug"), ExitCode.INTERNAL),
        (CascadecError("a bug", code="E999"), ExitCode.INTERNAL),
    ],
)
def test_one_exit_code_rule(outcome, expected):
    assert exit_code(outcome) == expected


def test_findings_exit_1():
    assert exit_code(findings=True) == ExitCode.FINDINGS and exit_code(findings=False) == ExitCode.OK


def test_errors_print_where_then_code_then_message():
    err = InputFileError("no such data file", where=Path("data.jsonl"))
    assert str(err) == "data.jsonl: E901 no such data file" and err.message == "no such data file"
    assert str(DataError("bad")) == "E500 bad"


def test_a_missing_input_file_exits_2_in_every_command(tmp_path):
    from cascadec.cli import app

    missing = tmp_path / "missing"
    (tmp_path / "plan.json").write_text("{}")
    runner = CliRunner()
    invocations = {
        "lint": ["lint", f"{missing}.txt"],
        "compile": ["compile", f"{missing}.yaml"],
        "compile --table": ["compile", "--table", f"{missing}.csv"],
        "explain": ["explain", f"{missing}.json"],
        "run": ["run", "--marker", "7B", "--data", f"{missing}.jsonl", "--out", str(tmp_path / "o")],
    }
    codes = {name: runner.invoke(app, args).exit_code for name, args in invocations.items()}
    assert codes == dict.fromkeys(invocations, 2)


def test_an_internal_error_exits_3_without_a_traceback():
    code = "import sys, cascadec.cli as c\ndef boom(*a, **k): raise KeyError('bug')\nc.app = boom\nc.main()\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 3, done.stderr
    assert "E999 internal error" in done.stderr and "Traceback" not in done.stderr


def exit_decisions(tree: ast.AST) -> list[int]:
    """Lines where a module decides an exit status itself instead of asking ``exit_code``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("typer.Exit", "sys.exit", "SystemExit"):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and arg.value not in (0, 130):  # 130: interrupted
                found.append(node.lineno)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.startswith("EXIT_") for t in ast.walk(node.targets[0])
        ):
            if any(isinstance(v, ast.Constant) and isinstance(v.value, int) for v in ast.walk(node.value)):
                found.append(node.lineno)
        elif isinstance(node, ast.Compare) and ast.unparse(node).split(" ")[0].endswith(".code"):
            texts = [c.value for c in node.comparators if isinstance(c, ast.Constant)]
            if any(isinstance(t, str) and t.startswith("E9") for t in texts):
                found.append(node.lineno)
    return found


def test_no_command_decides_exit_codes_itself():
    worker = ROOT / "cascadec" / "runtime" / "backends" / "vllm_engine.py"  # a process, not a command
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "cascadec").rglob("*.py"))
        if path not in (ROOT / "cascadec" / "errors.py", worker)
        for line in exit_decisions(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == [], "exit with cascadec.errors.exit_code(exc) / ExitCode, the one rule for every command"


def test_the_exit_decision_check_can_fail():
    source = (
        "EXIT_CONTENT, EXIT_USAGE = 1, 2\n"
        "raise typer.Exit(2 if exc.code == 'E900' else 1)\n"
        "sys.exit(3)\n"
        "raise typer.Exit(exit_code(exc))\n"
        "sys.exit(130)\n"
    )
    assert sorted(exit_decisions(ast.parse(source))) == [1, 2, 3]
