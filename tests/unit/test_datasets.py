"""The shipped problem sets: byte-identical files, ids, a gold for every row, usable by name."""

import hashlib
import json

import pytest
from typer.testing import CliRunner

import cascadec
from cascadec import datasets
from cascadec.cli import app
from cascadec.errors import DataError, InputFileError
from cascadec.plan import plan_to_json
from cascadec.runtime.data import problems_from_frame, read_table
from cascadec.runtime.testing import make_plan, strategy, tier

EXPECTED = {"gsm8k": 1319, "math500": 500, "aime24": 30, "amc23": 40}


def test_catalog_names_and_rows():
    assert {d.name: d.rows for d in datasets.DATASETS.values()} == EXPECTED


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shipped_file_is_the_publishers_and_every_row_has_a_gold(name):
    d = datasets.get(name)
    path = datasets.path_of(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == d.sha256
    assert len(path.read_bytes().splitlines()) == d.rows
    problems = problems_from_frame(read_table(name), source=name)
    assert len(problems) == d.rows == EXPECTED[name]
    assert [p.id for p in problems if not p.gold] == []
    assert len({p.id for p in problems}) == d.rows
    text = (datasets.HERE / d.licence_file).read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c)" in text
    sources = (datasets.HERE / "SOURCES.md").read_text(encoding="utf-8")
    assert d.sha256 in sources and d.commit in sources and d.path in sources


def test_gsm8k_ids_are_row_numbers_by_name_and_by_file():
    frame = cascadec.load_data("gsm8k")
    assert list(frame.columns) == ["id", "question", "answer"]
    by_name = problems_from_frame(frame)
    by_file = problems_from_frame(read_table(datasets.path_of("gsm8k")))
    assert [p.id for p in by_name] == [p.id for p in by_file] == [str(i) for i in range(1319)]
    assert (by_name[0].gold, by_name[1318].gold) == ("18", "14")
    # a subset keeps the ids of the whole file
    assert [p.id for p in problems_from_frame(frame.iloc[[5, 700]])] == ["5", "700"]


def test_known_golds_ids_and_difficulty():
    math = problems_from_frame(read_table("math500"), feature_columns=["level"])
    assert math[0].id == "test/precalculus/807.json" and math[0].features == {"level": 2.0}
    assert {p.features["level"] for p in math} == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert datasets.get("math500").difficulty_column == "level"
    aime = problems_from_frame(read_table("aime24"))
    assert (aime[0].id, aime[0].gold) == ("60", "204")
    amc = problems_from_frame(read_table("AMC23"))  # names are case-insensitive
    assert (amc[0].id, amc[0].gold) == ("0", "27")  # 27.0 in the file


def test_a_local_file_wins_over_a_name_a_folder_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "math500").mkdir()  # a folder is never a data file: the name is meant
    assert len(read_table("math500")) == 500
    (tmp_path / "gsm8k").write_text('{"question": "1+1", "answer": "#### 2"}\n')
    with pytest.raises(DataError, match="unsupported data format"):  # the local file was read
        read_table("gsm8k")


def test_unknown_name_is_one_clear_error():
    with pytest.raises(InputFileError) as err:
        read_table("math50")
    assert err.value.code == "E901"
    assert "did you mean math500?" in str(err.value) and "gsm8k, math500, aime24, amc23" in str(err.value)
    with pytest.raises(InputFileError) as err:
        read_table("missing.jsonl")  # a path is not offered the names
    assert "shipped" not in str(err.value)
    with pytest.raises(InputFileError):
        datasets.get("nope")


def test_cli_data_list_and_show():
    runner = CliRunner()
    r = runner.invoke(app, ["data", "list"])
    assert r.exit_code == 0, r.output
    for name, rows in EXPECTED.items():
        assert name in r.stdout and f"{rows} rows" in r.stdout
    assert "MIT" in r.stdout and "openai/grade-school-math" in r.stdout
    listed = json.loads(runner.invoke(app, ["data", "list", "--format", "json"]).stdout)
    assert [(d["name"], d["rows"], d["licence"]) for d in listed] == [
        (n, rows, "MIT") for n, rows in EXPECTED.items()
    ]
    assert listed[0]["id_rule"].startswith("row number") and listed[1]["id_column"] == "unique_id"
    shown = json.loads(
        runner.invoke(app, ["data", "show", "aime24", "--rows", "2", "--format", "json"]).stdout
    )
    assert shown["rows"] == shown["with_gold"] == 30 and [h["id"] for h in shown["head"]] == ["60", "61"]
    r = runner.invoke(app, ["data", "show", "gsm8k", "--rows", "1"])
    assert r.exit_code == 0 and "1319 problems, 1319 with a gold answer" in r.stdout and "gold=18" in r.stdout
    bad = runner.invoke(app, ["data", "show", "gsm9k"])
    assert bad.exit_code == 2 and "E901" in bad.stderr and "did you mean gsm8k?" in bad.stderr


def test_data_option_takes_a_name(tmp_path):
    plan = make_plan([strategy("c", [tier("S", 1, 0.0)])], {"S": 1.5})
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    r = CliRunner().invoke(
        app, ["run", str(tmp_path / "plan.json"), "--data", "amc23", "--dry-run", "--backend", "vllm"]
    )
    assert r.exit_code == 0, r.output
    assert "no model loaded" in r.stdout
