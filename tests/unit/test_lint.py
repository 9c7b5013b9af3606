"""`cascadec lint` end to end through the real console entry point (subprocess-free: CliRunner)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cascadec.cli import app

runner = CliRunner()


def lint(*args, input=None):
    result = runner.invoke(app, ["lint", *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_clean_file_exits_zero(tmp_path):
    f = tmp_path / "ok.txt"
    f.write_text(
        "# seed strategies\nmv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0\n\nmv_1.5B_k8_t0.7  # simple vote\n7B\n"
    )
    code, out, err = lint(str(f))
    assert code == 0, out + err
    assert out == ""
    assert "All checks passed (3 strategies)" in err


def test_findings_are_ruff_style_lines(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("mv_1.5B_k8_t0.7\n   mv_1.5B_k0_t0.7\nmv_72B_k4_t0.7\n")
    code, out, _ = lint(str(f))
    assert code == 1
    assert out.splitlines() == [
        f"{f}:2:13: E102 k must be an integer >= 1, got 0 (use k1 for a single sample)",
        f"{f}:3:9: W103 72B is greedy-only (memory safety): k4_t0.7 runs as k1_t0.0 (write 72B_k1_t0.0)",
    ]


def test_warnings_exit_zero_unless_strict(tmp_path):
    f = tmp_path / "w.txt"
    f.write_text("mv_72B_k4_t0.7\n")
    assert lint(str(f))[0] == 0
    assert lint(str(f), "--strict")[0] == 1


def test_json_format_and_stdin():
    code, out, _ = lint("-", "--format", "json", input="mv_3B_k4_t0.7\n")
    assert code == 1
    [d] = json.loads(out)
    assert (d["path"], d["line"], d["column"], d["code"], d["fix"]) == ("-", 1, 4, "E105", "did you mean 7B?")


def test_csv_jsonl_parquet_columns(tmp_path):
    rows = [{"id": 1, "strategy": "mv_1.5B_k8_t0.7"}, {"id": 2, "strategy": "mv_1.5B_k0_t0.7"}]
    csv = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    code, out, _ = lint(str(csv))
    assert code == 1 and out.startswith(f"{csv}:3:12: E102")
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = lint(str(jsonl))
    assert code == 1 and out.startswith(f"{jsonl}:2:")
    pq = tmp_path / "t.parquet"
    pd.DataFrame(rows).rename(columns={"strategy": "marker"}).to_parquet(pq)
    code, out, _ = lint(str(pq), "--column", "marker")
    assert code == 1 and out.startswith(f"{pq}:2:10: E102")


def test_missing_column_and_missing_file_are_usage_errors(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,other\n1,x\n")
    code, _, err = lint(str(csv))
    assert code == 2 and "no column 'strategy'" in err
    code, _, err = lint(str(tmp_path / "nope.txt"))
    assert code == 2 and "No such file" in err


def test_binary_file_is_an_io_error_not_a_traceback(tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(bytes(range(256)) * 4)
    code, _, err = lint(str(f))
    assert code == 2 and "not UTF-8" in err


def test_no_arguments_is_a_usage_error():
    assert runner.invoke(app, ["lint"]).exit_code == 2


@pytest.mark.parametrize("fmt", ["xml"])
def test_bad_format_is_a_usage_error(tmp_path, fmt):
    f = tmp_path / "ok.txt"
    f.write_text("7B\n")
    assert lint(str(f), "--format", fmt)[0] == 2
