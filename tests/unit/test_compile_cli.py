"""`cascadec compile / explain / schema` end to end (CliRunner on a throwaway app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cascadec.cli_compile import register, schema_text
from cascadec.plan import plan_from_json

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
REAL = (SPECS / "three_tier_cascade.yaml").read_text()

app = typer.Typer(pretty_exceptions_enable=False)
register(app)
runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_compile_spec_to_stdout():
    code, out, err = run("compile", str(SPECS / "three_tier_cascade.yaml"))
    assert code == 0, err
    plan = plan_from_json(out)
    assert plan.strategies[0].marker == "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0"


def test_compile_is_deterministic_and_o_writes_the_same_bytes(tmp_path):
    spec = str(SPECS / "tuned_cascade.yaml")
    _, first, _ = run("compile", spec)
    _, second, _ = run("compile", spec)
    code, out, err = run("compile", spec, "-o", str(tmp_path / "plan.json"))
    assert code == 0 and out == "" and "wrote" in err
    assert first == second == (tmp_path / "plan.json").read_text()


def test_compile_marker_reports_greedy_only_on_stderr():
    code, out, err = run("compile", "--marker", "mv_cascade_1.5B_k4_t0.7_72B_k4_t0.7")
    assert code == 0
    assert err.startswith("<marker>:1:30: W103")
    strategy = plan_from_json(out).strategies[0]
    assert strategy.key == "mv_cascade_1.5B_k4_t0.7_72B_k4_t0.7"
    assert strategy.marker == "mv_cascade_1.5B_k4_t0.7_72B_k1_t0.0"
    assert (strategy.tiers[-1].k, strategy.tiers[-1].temperature) == (1, 0.0)


def test_compile_bad_marker():
    code, out, err = run("compile", "--marker", "mv_9B_k4_t0.7")
    assert code == 1 and out == ""
    assert err.startswith("<marker>:1:4: E105")


def test_compile_table_deduplicates(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("id,strategy\n1,mv_1.5B_k8_t0.7\n2,7B\n3,mv_1.5B_k8_t0.70\n4,7B\n")
    code, out, err = run("compile", "--table", str(table))
    assert code == 0, err
    assert [s.key for s in plan_from_json(out).strategies] == ["7B", "mv_1.5B_k8_t0.7"]


def test_compile_table_reports_every_bad_row(tmp_path):
    table = tmp_path / "t.jsonl"
    rows = [{"s": "mv_1.5B_k8_t0.7"}, {"s": "mv_1.5B_k0_t0.7"}, {"s": "mv_3B_k4_t0.7"}]
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run("compile", "--table", str(table), "--column", "s")
    assert code == 1 and out == ""
    assert [line.split(" ")[0:2] for line in err.splitlines()] == [
        [f"{table}:2:17:", "E102"],
        [f"{table}:3:11:", "E105"],
    ]


def test_compile_table_missing_column_is_usage(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("id,marker\n1,7B\n")
    code, _, err = run("compile", "--table", str(table))
    assert code == 2 and "no column 'strategy'" in err


def test_compile_with_models_file(tmp_path):
    reg = tmp_path / "reg.yaml"
    reg.write_text(
        "version: 1\nmodels:\n  - {id: acme/small, aliases: [1M], params: 1.0e6}\n  - {id: acme/big, aliases: [100M], params: 1.0e8}\n"
    )
    code, out, err = run("compile", "--marker", "mv_cascade_1M_k4_t0.7_100M_k1_t0.0", "--models", str(reg))
    assert code == 0, err
    plan = plan_from_json(out)
    assert sorted(plan.models) == ["acme/big", "acme/small"]


# --- hidden-check style: broken variants of a real spec ------------------------------------------
BROKEN = {
    "unknown_key": (REAL.replace("final_answer:", "final_anwser:"), "E201"),
    "duplicate_key": (REAL + "version: 1\n", "E202"),
    "broken_yaml": (REAL.replace("strategy:", "strategy: [", 1), "E203"),
    "python_tag": (REAL.replace("version: 1", "version: !!python/object/apply:os.system ['true']"), "E204"),
    "empty": ("", "E203"),
    "binary": (bytes(range(256)) * 4, "E203"),
    "bad_condition": (REAL.replace('"agreement < 0.75"', '"agreement << 0.75"', 1), "E210"),
    "unknown_model": (REAL.replace("model: 7B", "model: 8B"), "E105"),
    "unreachable": (REAL.replace('"agreement < 0.75"', '"agreement > 1"', 1), "E400"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("command", ["compile", "explain"])
def test_broken_spec_gets_a_located_error_and_exit_1(tmp_path, name, command):
    content, expected = BROKEN[name]
    f = tmp_path / f"{name}.yaml"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = run(command, str(f))
    assert code == 1
    assert out == ""
    first = err.splitlines()[0]
    path, line, column, rest = first.split(":", 3)
    assert path == str(f) and int(line) >= 1 and int(column) >= 1
    assert expected in err


def test_usage_errors_exit_2(tmp_path):
    assert run("compile")[0] == 2
    assert run("compile", str(SPECS / "simple_mv.yaml"), "--marker", "7B")[0] == 2
    assert run("compile", str(tmp_path / "missing.yaml"))[0] == 2
    assert run("compile", "notes.txt")[0] == 2
    assert run("compile", "--marker", "7B", "--models", str(tmp_path / "none.yaml"))[0] == 2
    assert run("compile", "--marker", "7B", "-o", str(tmp_path / "no" / "dir" / "p.json"))[0] == 2
    assert run("explain")[0] == 2
    assert run("explain", str(tmp_path / "missing.json"))[0] == 2


# --- explain and schema -----------------------------------------------------------------------------
def test_explain_spec_plan_and_marker(tmp_path):
    code, out, _ = run("explain", str(SPECS / "tuned_cascade.yaml"))
    assert code == 0
    assert "tuned_cascade" in out and "agreement < 0.5" in out and "worst case" in out
    plan = tmp_path / "p.json"
    run("compile", str(SPECS / "entropy_cascade.yaml"), "-o", str(plan))
    code, out, _ = run("explain", str(plan))
    assert code == 0 and "skip to top" in out
    code, out, err = run("explain", "--marker", "mv_1.5B_k8_t0.7")
    assert code == 0 and "mv_1.5B_k8_t0.7" in out


def test_explain_rejects_a_tampered_plan(tmp_path):
    plan = tmp_path / "p.json"
    run("compile", str(SPECS / "simple_mv.yaml"), "-o", str(plan))
    plan.write_text(plan.read_text().replace('"k": 8', '"k": 9'))
    code, _, err = run("explain", str(plan))
    assert code == 1 and "E401" in err


@pytest.mark.parametrize("which", ["spec", "plan", "results"])
def test_schema_is_exported_and_current(which):
    code, out, _ = run("schema", which)
    assert code == 0 and json.loads(out)["type"] == "object"
    exported = (SPECS / "schema" / f"{which}.schema.json").read_text()
    assert out == exported == schema_text(which), (
        f"re-export: cascadec schema {which} -o specs/schema/{which}.schema.json"
    )


def test_schema_unknown():
    assert run("schema", "nope")[0] == 2


def test_registered_on_the_real_cli():
    from cascadec.cli import app as real

    result = CliRunner().invoke(real, ["compile", "--marker", "7B"])
    assert result.exit_code == 0 and plan_from_json(result.stdout).strategies[0].kind == "plain"
