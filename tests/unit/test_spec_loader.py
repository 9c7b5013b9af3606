"""The YAML spec loader: every broken input gets a located, coded error; good input keeps positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascadec.errors import CascadecError, SpecError
from cascadec.spec.from_marker import spec_from_marker, spec_to_yaml
from cascadec.spec.loader import MAX_NODES, load_spec, parse_yaml
from cascadec.spec.model import Spec

SPECS = Path(__file__).resolve().parents[2] / "specs"
REAL = (SPECS / "three_tier_cascade.yaml").read_text()


def errors_of(tmp_path: Path, content: str | bytes, name: str = "s.yaml"):
    f = tmp_path / name
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SpecError) as info:
        load_spec(f)
    diags = info.value.diagnostics
    assert diags and all(d.source == str(f) for d in diags)
    return [(d.code, d.line, d.column) for d in diags], diags


def test_real_spec_loads():
    spec, doc = load_spec(SPECS / "three_tier_cascade.yaml")
    assert spec.version == 1 and spec.strategy.kind == "cascade"
    assert [t.model for t in spec.strategy.tiers] == ["1.5B", "7B", "72B"]


def test_every_key_and_value_keeps_its_position():
    doc = parse_yaml("version: 1\nstrategy:\n  cascade:\n    - {model: 7B, k: 4}\n    - model: 72B\n")
    assert doc.locate(("strategy",), key=True) == (2, 1)
    assert doc.locate(("strategy", "cascade", 0, "k")) == (4, 22)
    assert doc.locate(("strategy", "cascade", 1, "model"), key=True) == (5, 7)
    assert doc.locate(("strategy", "cascade", 1, "missing")) == (5, 7)  # nearest ancestor


def test_text_start_inside_quotes_and_block_scalars():
    doc = parse_yaml('a: "x < 1"\nb: |\n    y < 2\nc: z\n')
    assert doc.text_start(("a",)) == (1, 5)
    assert doc.text_start(("b",)) == (3, 5)
    assert doc.text_start(("c",)) == (4, 4)


# --- the hidden checks' broken variants of a real spec -----------------------------------------
def test_unknown_key_with_did_you_mean(tmp_path):
    found, diags = errors_of(tmp_path, REAL.replace("final_answer:", "final_anwser:"))
    assert found == [("E201", 12, 3)]
    assert diags[0].fix == "did you mean 'final_answer'?"


def test_unknown_nested_key_lists_known_keys(tmp_path):
    found, diags = errors_of(tmp_path, REAL.replace("k: 4, temperature", "kk: 4, temperature", 1))
    assert found == [("E201", 9, 21)]
    assert "did you mean 'k'" in diags[0].fix


def test_misspelled_required_key_reports_only_the_typo(tmp_path):
    found, _ = errors_of(tmp_path, REAL.replace("strategy:", "stratgy:"))
    assert found == [("E201", 7, 1)]


def test_duplicate_key(tmp_path):
    found, diags = errors_of(
        tmp_path, REAL.replace("final_answer: last_tier", "final_answer: last_tier\n  final_answer: pooled")
    )
    assert found == [("E202", 13, 3)]
    assert "first defined on line 12" in diags[0].message


def test_duplicate_key_in_flow_mapping(tmp_path):
    found, _ = errors_of(tmp_path, "version: 1\nstrategy: {mv: {model: 7B, k: 4, k: 8, temperature: 0.7}}\n")
    assert found == [("E202", 2, 34)]


def test_broken_yaml(tmp_path):
    found, diags = errors_of(tmp_path, REAL.replace("- {model: 7B,", "- {model: 7B,, ]"))
    assert found[0][0] == "E203" and found[0][1] == 10
    assert diags[0].message.startswith("YAML syntax error")


@pytest.mark.parametrize(
    "tagged",
    [
        "version: !!python/object/apply:os.system ['echo pwned']\n",
        "version: !!python/name:os.system\n",
        "version: !custom 1\n",
        "version: !!binary aGVsbG8=\n",
        "version: !!set {a, b}\n",
    ],
)
def test_python_and_custom_tags_are_refused(tmp_path, tagged):
    found, _ = errors_of(tmp_path, tagged + "strategy: {plain: 7B}\n")
    assert found[0][:2] == ("E204", 1)


def test_alias_explosion_is_bounded(tmp_path):
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    found, diags = errors_of(tmp_path, "\n".join(lines) + "\n")
    assert found[0][0] == "E204"
    assert str(MAX_NODES) in diags[0].message


def test_recursive_anchor(tmp_path):
    found, _ = errors_of(tmp_path, "version: 1\nstrategy: &s {plain: 7B, x: *s}\n")
    assert found[0][0] == "E204"


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_files(tmp_path, content):
    found, _ = errors_of(tmp_path, content)
    assert found == [("E203", 1, 1)]


def test_binary_file(tmp_path):
    found, diags = errors_of(tmp_path, b"version: 1\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert found == [("E203", 4, 1)]
    assert "binary" in diags[0].message


def test_not_utf8(tmp_path):
    found, diags = errors_of(tmp_path, b"version: 1\nname: caf\xe9\n")
    assert found == [("E203", 2, 10)]
    assert "UTF-8" in diags[0].message


def test_control_characters(tmp_path):
    found, _ = errors_of(tmp_path, "version: 1\nname: a\x07b\n")
    assert found[0][0] == "E203" and found[0][1] == 2


@pytest.mark.parametrize(
    ("content", "what"), [("- 1\n- 2\n", "list"), ("just text\n", "string"), ("42\n", "int")]
)
def test_document_not_a_mapping(tmp_path, content, what):
    found, diags = errors_of(tmp_path, content)
    assert found == [("E203", 1, 1)]
    assert what in diags[0].message


def test_two_documents(tmp_path):
    found, _ = errors_of(tmp_path, REAL + "---\nversion: 1\n")
    assert found[0][0] == "E203"


def test_unsupported_version(tmp_path):
    found, _ = errors_of(tmp_path, REAL.replace("version: 1", "version: 2"))
    assert found == [("E205", 4, 10)]


def test_missing_version(tmp_path):
    found, diags = errors_of(tmp_path, "strategy: {plain: 7B}\n")
    assert found == [("E200", 1, 1)]
    assert diags[0].fix == "add 'version: 1'"


def test_schema_errors_point_at_the_value(tmp_path):
    found, diags = errors_of(tmp_path, "version: 1\nstrategy:\n  mv: {model: 7B, k: 0, temperature: 0.7}\n")
    assert found == [("E200", 3, 22)]
    assert "strategy.mv.k" in diags[0].message and "got 0" in diags[0].message


def test_two_kinds_at_once(tmp_path):
    found, diags = errors_of(
        tmp_path, "version: 1\nstrategy:\n  plain: 7B\n  mv: {model: 7B, k: 4, temperature: 0.7}\n"
    )
    assert found == [("E200", 2, 1)]
    assert "exactly one of" in diags[0].message


def test_every_error_is_reported(tmp_path):
    found, _ = errors_of(tmp_path, "version: 1\nversion: 1\nstrategy: {plain: 7B, plain: 7B}\n")
    assert [f[0] for f in found] == ["E202", "E202"]


def test_unreadable_file_is_io_error(tmp_path):
    with pytest.raises(CascadecError) as info:
        load_spec(tmp_path / "missing.yaml")
    assert info.value.code == "E901"


# --- what YAML offers that a spec may use ------------------------------------------------------
def test_merge_keys_and_anchors(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(
        "version: 1\nstrategy:\n  cascade:\n    - &t {model: 1.5B, k: 4, temperature: 0.7}\n"
        "    - {<<: *t, model: 7B}\n    - {model: 72B}\n"
    )
    spec, _ = load_spec(f)
    assert [(t.model, t.k) for t in spec.strategy.tiers] == [("1.5B", 4), ("7B", 4), ("72B", 1)]


def test_boolean_conditions_and_dates_are_text(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text(
        "version: 1\nname: 2024-01-01\nstrategy:\n  cascade:\n    - {model: 1.5B, escalate_if: true}\n    - {model: 7B}\n"
    )
    spec, _ = load_spec(f)
    assert spec.name == "2024-01-01"
    assert spec.strategy.tiers[0].escalate_if == "true"


@pytest.mark.parametrize(
    "marker",
    [
        "7B",
        "mv_1.5B_k8_t0.7",
        "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0",
        "mv_entropy_cascade_1.5B_k4_t0.7_72B_k1_t0.0",
    ],
)
def test_yaml_twin_of_a_marker_loads_back_equal(tmp_path, marker):
    spec = spec_from_marker(marker)
    f = tmp_path / "twin.yaml"
    f.write_text(spec_to_yaml(spec))
    loaded, _ = load_spec(f)
    assert loaded == spec


def test_plain_shorthand():
    assert Spec.model_validate({"version": 1, "strategy": {"plain": "7B"}}).strategy.tiers[0].model == "7B"


@pytest.mark.parametrize(
    "value", ["k: true", "k: 4.5", "temperature: '0.7'", "temperature: .inf", "seed: -1"]
)
def test_no_quiet_conversions(tmp_path, value):
    found, _ = errors_of(tmp_path, f"version: 1\nstrategy:\n  mv:\n    model: 7B\n    {value}\n")
    assert [f[:2] for f in found] == [("E200", 5)]
