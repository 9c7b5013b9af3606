"""The README's examples work: its YAML spec compiles and its markers parse."""

import re
from pathlib import Path

import pytest

from cascadec.compiler import compile_spec
from cascadec.marker import parse_marker
from cascadec.registry import named_registry

README = Path(__file__).resolve().parents[2] / "README.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("index", range(len(_yaml_blocks())))
def test_readme_spec_compiles(tmp_path, index):
    path = tmp_path / "readme.yaml"
    path.write_text(_yaml_blocks()[index], encoding="utf-8")
    if "\nsearch:" in _yaml_blocks()[index]:  # a search space: every candidate compiles, no warning
        from cascadec.compiler.space import check_space

        found = check_space(path)
        assert found.candidates and not found.diagnostics, [d.format() for d in found.diagnostics]
        assert f"has {found.candidates:,} candidates" in README.read_text(encoding="utf-8")
        return
    plan, _ = compile_spec(path)
    assert plan.strategies


def test_readme_has_a_spec_example():
    assert _yaml_blocks()


def test_readme_markers_parse():
    markers = set(re.findall(r"`(mv_[A-Za-z0-9_.]+)`", README.read_text(encoding="utf-8")))
    assert len(markers) >= 3
    zoo = named_registry("zoo")
    for text in markers:
        registry = zoo if "M_" in text else None  # zoo aliases: 0.034M, 1.1M, ...
        assert str(parse_marker(text, registry=registry)) == text
