"""The layering is enforced: the import-linter contracts hold and no module reaches into another's privates."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cascadec"


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(path: Path, me: str) -> list[str]:
    """``from a.b import _x`` and ``a._x(...)`` reaching into a cascadec module other than ``me``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cascadec"):
            for alias in node.names:
                if _private(alias.name) and node.module != me:
                    found.append(f"{path.name}:{node.lineno}: from {node.module} import {alias.name}")
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("cascadec"):
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{path.name}:{node.lineno}: import {alias.name}")
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [
        hit for path in sorted(PACKAGE.rglob("*.py")) for hit in private_imports(path, _module_name(path))
    ]
    assert found == []


def test_the_private_name_check_can_fail(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from cascadec.runtime.executor import _x\n"
        "from cascadec.runtime.backends import vllm_engine as e\n"
        "e._build({})\n"
        "from cascadec import __version__\n"
    )
    assert private_imports(probe, "cascadec.probe") == [
        "probe.py:1: from cascadec.runtime.executor import _x",
        "probe.py:3: e._build",
    ]


def test_every_top_level_module_has_a_layer():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {m.strip(" ()") for layer in layers for m in re.split(r"[|:]", layer)}
    top = {f"cascadec.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    top |= {f"cascadec.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    assert sorted(top - named) == [], "add the module to a layer in pyproject.toml [tool.importlinter]"


def _contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"][
        "contracts"
    ]


def test_serve_report_and_sim_are_independent_and_the_runtime_is_layered():
    layers = next(c for c in _contracts() if c["type"] == "layers" and not c.get("containers"))["layers"]
    assert "cascadec.serve | cascadec.report | cascadec.sim" in layers
    for name in ("cascadec.limits", "cascadec.lint_batch", "cascadec.golden", "cascadec.stats"):
        assert any(name in re.split(r"\s*[|:]\s*", layer.strip("()")) for layer in layers), name
    runtime = next(c for c in _contracts() if c.get("containers") == ["cascadec.runtime"])
    order = [m.strip() for layer in runtime["layers"] for m in re.split(r"[|:]", layer)]
    assert order.index("executor") < order.index("jobs") < order.index("decide") < order.index("records")


def test_readme_lists_the_layers_the_contracts_hold():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from generate import LAYERS_END, LAYERS_START, layers_text
    finally:
        sys.path.remove(str(ROOT / "tools"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.partition(LAYERS_START)[2].partition(LAYERS_END)[0]
    assert block == "\n" + layers_text(), "regenerate it: python tools/generate.py"


@pytest.mark.parametrize(
    "importer, imported",
    [
        ("sim/bank.py", "cascadec.serve.protocol"),
        ("report/markdown.py", "cascadec.sim.baselines"),
        ("runtime/records.py", "cascadec.runtime.executor"),
    ],
)
def test_lint_imports_fails_on_an_import_against_the_contracts(tmp_path, importer, imported):
    """A copy of the package with one forbidden import planted: lint-imports must break a contract."""
    import shutil

    pytest.importorskip("importlinter")
    shutil.copytree(
        PACKAGE, tmp_path / "cascadec", ignore=shutil.ignore_patterns("__pycache__", "*.jsonl", "*.npz")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "cascadec" / importer
    target.write_text(
        target.read_text(encoding="utf-8") + f"\nimport {imported}  # planted\n", encoding="utf-8"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode != 0, done.stdout[-2000:]
    assert "BROKEN" in done.stdout and imported in done.stdout, done.stdout[-3000:]
