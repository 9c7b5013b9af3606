"""Search spaces are specs (issue 23 item 3): `lint` and `compile --check` check the base and
every candidate, say how many there are, locate findings where the varying value is written;
the pre-commit hook passes on the shipped spaces; the space's JSON Schema is exported."""

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.cli_compile import schema_text
from cascadec.compiler import space as space_check
from cascadec.compiler.space import check_space
from cascadec.spec.space import count_candidates, load_space, spec_candidates, tier_options

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "specs" / "search").glob("*.yaml"))
runner = CliRunner()

SPACE = """version: 1
name: s
models: zoo
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 0.084M, k: 2, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 1.1M}
search:
  tiers:
    - {k: [2, 4], escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}}
    - {optional: true}
    - {}
  early_stop: [null, 1]
"""


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def cli(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_spaces_lint_clean_and_count_what_calibrate_expands(path):
    from cascadec.sim.space import compile_base, expand

    found = check_space(path)
    assert found.ok and found.every, [d.format() for d in found.diagnostics]
    base, space = load_space(path)
    sim = expand(base, space, compile_base(base, path))
    assert found.candidates == found.compiled == len(sim)
    # the spec-level expansion is calibrate's, candidate for candidate (same index, same choices)
    cands = list(spec_candidates(base, space, tier_options(base, space)))
    for cand, got in zip(cands, sim, strict=True):
        assert [t.get("escalate_if") for t in cand.spec["strategy"]["cascade"]] == [
            t.get("escalate_if") for t in got.spec["strategy"]["cascade"]
        ]
        assert cand.spec["strategy"].get("adaptive_k") == got.spec["strategy"].get("adaptive_k")


def test_lint_accepts_a_space_and_says_how_many_candidates(tmp_path):
    path = write(tmp_path, SPACE)
    code, out, err = cli("lint", str(path))
    assert code == 0, out + err
    # tier 0: 2 k x 2 thresholds; tier 1 kept or left out; x 2 early-stop choices
    assert f"{path}: search space, 16 candidates, every candidate compiled: ok" in err
    assert "All checks passed (16 strategies)" in err
    assert "unknown key 'search'" not in out + err


def test_compile_check_accepts_a_space_and_compile_alone_points_at_it(tmp_path):
    path = write(tmp_path, SPACE)
    code, _, err = cli("compile", "--check", str(path))
    assert code == 0 and "16 candidates" in err
    code, out, err = cli("compile", str(path))
    assert code == 2 and out == "" and "is a search space" in err and "--check" in err
    code, _, err = cli("compile", "--check", str(ROOT / "specs" / "demo.yaml"))
    assert code == 0 and "ok: 1 strategies compile" in err


@pytest.mark.parametrize(
    "old, new, code, line, text",
    [  # a template that fills to an unknown signal: located at the template, no candidate expanded
        ('"agreement < {a}"', '"agreement < {a} or bogus > 1"', "E211", 12, "unknown signal 'bogus'"),
        # a filled value of the wrong type
        ("grid: {a: [0.75, 1.0]}", "grid: {a: [0.75, high]}", "E200", 12, "search.tiers"),
        # a placeholder with no values
        ('"agreement < {a}"', '"agreement < {b}"', "E200", 12, "placeholder(s) b"),
        # temperatures out of the spec's range, k out of the plan's
        ("k: [2, 4]", "k: [2, 4], temperature: [0.7, 3]", "E200", 12, "search.tiers.0.temperature"),
        ("k: [2, 4]", "k: [0, 4]", "E200", 12, "search.tiers.0.k"),
        ("early_stop: [null, 1]", "early_stop: [null, 1]\n  nope: 1", "E200", 16, "search.nope"),
        # an adaptive-k policy the spec refuses
        (
            "early_stop: [null, 1]",
            "adaptive_k: [{policy: difficulty_buckets}]",
            "E200",
            15,
            "policy difficulty_buckets needs buckets",
        ),
        # a candidate (tier 1 left out) whose start tier no longer exists: compiler check E400
        (
            "early_stop: [null, 1]",
            "adaptive_k: [{policy: difficulty_buckets, column: bucket, start_tiers: [[1, 0], [5, 2]]}]",
            "E400",
            15,
            "tier 1 left out",
        ),
        # k 4 at temperature 0 (E104) only in the combinations that pair them
        ("k: [2, 4]", "k: [1, 4], temperature: [0.0, 0.7]", "E104", 12, "and "),
    ],
)
def test_every_template_grid_and_combination_is_checked(tmp_path, old, new, code, line, text):
    path = write(tmp_path, SPACE.replace(old, new))
    found = check_space(path)
    errors = [d for d in found.diagnostics if d.is_error]
    assert errors and errors[0].code == code, [d.format() for d in found.diagnostics]
    assert errors[0].line == line and text in errors[0].message, errors[0].format()
    assert errors[0].source == str(path)
    exit_code, out, _ = cli("lint", str(path))
    assert exit_code == 1 and f"{path}:{line}:" in out


def test_warnings_for_values_never_tried(tmp_path):
    text = SPACE.replace("grid: {a: [0.75, 1.0]}", "grid: {a: [0.75, 1.0], z: [1]}").replace(
        "    - {model: 1.1M}\n",
        "    - {model: 1.1M}\n  adaptive_k: {policy: difficulty_buckets, buckets: [[1.0, 2]]}\n",
    )
    found = check_space(write(tmp_path, text))
    warnings = [d.message for d in found.diagnostics if d.code == "W400"]
    assert any("'z' is not a placeholder" in m for m in warnings), warnings
    assert any("strategy.adaptive_k is not kept" in m for m in warnings), warnings
    assert found.ok


def test_too_many_candidates_is_an_error(tmp_path):
    path = write(
        tmp_path, SPACE.replace("early_stop: [null, 1]", "early_stop: [null, 1]\n  max_candidates: 10")
    )
    found = check_space(path)
    assert not found.ok and "16 candidates, more than max_candidates 10" in found.diagnostics[0].message


def test_large_spaces_compile_a_covering_set_and_still_find_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(space_check, "COMPILE_EVERY_UP_TO", 4)
    path = write(
        tmp_path,
        SPACE.replace(
            "early_stop: [null, 1]",
            "adaptive_k: [null, {policy: difficulty_buckets, column: bucket, start_tiers: [[1, 0], [5, 2]]}]",
        ),
    )
    found = check_space(path)
    assert not found.every and found.compiled < found.candidates == 16
    assert any(d.code == "E400" for d in found.diagnostics)
    assert "the rest schema-checked" in found.summary()


def test_count_matches_expansion_with_optional_tiers(tmp_path):
    text = SPACE.replace("    - {}\n  early", "    - {optional: true}\n  early")
    base, space = load_space(write(tmp_path, text))
    options = tier_options(base, space)
    assert count_candidates(space, options) == len(list(spec_candidates(base, space, options)))


def test_space_schema_is_exported_and_validates_the_shipped_spaces():
    text = schema_text("space")
    assert (ROOT / "specs" / "schema" / "space.schema.json").read_text() == text
    schema = json.loads(text)
    for path in SHIPPED:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**yaml.safe_load(SHIPPED[0].read_text()), "search": {"tiers": [], "x": 1}}, schema
        )
    code, out, _ = cli("schema", "space")
    assert code == 0 and json.loads(out) == schema


def test_pre_commit_spec_hook_passes_on_the_shipped_spaces():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks["cascadec-lint-specs"]
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    matched = [
        f for f in files if re.search(hook["files"], f) and not re.search(hook.get("exclude", "^$"), f)
    ]
    assert any(f.startswith("specs/search/") for f in matched)
    code, out, err = cli(*hook["entry"].split()[1:], *(str(ROOT / f) for f in matched))
    assert code == 0, out + err
