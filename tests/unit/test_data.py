"""Problem tables: formats, the GSM8K / MATH / AIME layouts, and clear E500 errors."""

import json

import pandas as pd
import pytest

from cascadec.errors import DataError
from cascadec.runtime.data import fingerprint, problems_from_frame, read_table


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_csv_parquet_read_the_same(tmp_path):
    rows = [{"id": "007", "problem": "1+1", "answer": "2"}, {"id": "8", "problem": "2+2", "answer": "4"}]
    write_jsonl(tmp_path / "p.jsonl", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "p.parquet")
    got = [problems_from_frame(read_table(tmp_path / f"p.{ext}")) for ext in ("jsonl", "csv", "parquet")]
    assert got[0] == got[1] == got[2]
    assert [p.id for p in got[0]] == ["007", "8"]
    assert got[0][0].gold == "2"


def test_gsm8k_layout(tmp_path):
    f = write_jsonl(
        tmp_path / "gsm8k.jsonl", [{"question": "Janet has 3 ducks...", "answer": "3*6=18\n#### 18"}]
    )
    (p,) = problems_from_frame(read_table(f))
    assert p.problem.startswith("Janet") and p.gold == "18" and p.id == "0"


def test_math_layout():
    df = pd.DataFrame(
        {
            "problem": ["Find x."],
            "solution": ["So $x=\\boxed{\\frac{1}{2}}$."],
            "level": ["Level 3"],
            "unique_id": ["test/algebra/1.json"],
        }
    )
    (p,) = problems_from_frame(df, feature_columns=["level"])
    assert p.gold == "\\frac{1}{2}" and p.id == "test/algebra/1.json" and p.features == {"level": 3.0}


def test_aime_layout():
    df = pd.DataFrame({"ID": ["1983-1"], "Problem": ["Let x..."], "Answer": [60]})
    (p,) = problems_from_frame(df)
    assert (p.id, p.gold) == ("1983-1", "60")


def test_no_gold_is_fine_and_difficulty_optional():
    (p,) = problems_from_frame(
        pd.DataFrame({"problem": ["x"], "difficulty": [None]}), feature_columns=["difficulty"]
    )
    assert p.gold is None and p.features == {"difficulty": None}


def test_frame_is_not_modified():
    df = pd.DataFrame({"problem": ["a", "b"], "answer": ["1", "2"]})
    before = df.copy()
    problems_from_frame(df)
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"text": ["x"]}), "no problem column"),
        (pd.DataFrame({"id": ["a", "a"], "problem": ["x", "y"]}), "duplicate id 'a'"),
        (pd.DataFrame({"id": ["a", "b"], "problem": ["x", None]}), "row 1 \\(id b\\): E500 empty 'problem'"),
        (pd.DataFrame({"problem": ["x"], "difficulty": ["hard"]}), "difficulty 'hard' is not a number"),
        (pd.DataFrame({"problem": []}), "no problems"),
    ],
)
def test_bad_frames(frame, message):
    with pytest.raises(DataError, match=message) as info:
        problems_from_frame(frame, feature_columns=["difficulty"])
    assert info.value.code == "E500"


def test_strategy_column_errors():
    df = pd.DataFrame({"problem": ["x", "y"], "strategy": ["mv_7B_k4_t0.7", ""]})
    with pytest.raises(DataError, match="no strategy column 'marker'"):
        problems_from_frame(df, strategy_column="marker")
    with pytest.raises(DataError, match="row 1 .*empty strategy cell"):
        problems_from_frame(df, strategy_column="strategy")


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        read_table(tmp_path / "missing.jsonl")
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported data format"):
        read_table(tmp_path / "p.txt")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="cannot read data"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot read data"):
        read_table(tmp_path / "bad.parquet")
    (tmp_path / "empty.csv").write_text("problem\n")
    with pytest.raises(DataError, match="no rows"):
        read_table(tmp_path / "empty.csv")


def test_fingerprint_tracks_content():
    a = problems_from_frame(pd.DataFrame({"problem": ["x", "y"]}))
    b = problems_from_frame(pd.DataFrame({"problem": ["x", "z"]}))
    assert fingerprint(a) == fingerprint(problems_from_frame(pd.DataFrame({"problem": ["x", "y"]})))
    assert fingerprint(a) != fingerprint(b)


def test_one_problem_may_run_several_strategies_but_each_once():
    df = pd.DataFrame(
        {"id": ["a", "a", "b"], "problem": ["x", "x", "y"], "strategy": ["7B", "mv_7B_k4_t0.7", "7B"]}
    )
    assert [(p.id, p.strategy) for p in problems_from_frame(df, strategy_column="strategy")] == [
        ("a", "7B"),
        ("a", "mv_7B_k4_t0.7"),
        ("b", "7B"),
    ]
    twice = pd.concat([df, df.iloc[[1]]], ignore_index=True)
    with pytest.raises(
        DataError, match="duplicate id 'a' with strategy 'mv_7B_k4_t0.7' \\(first at row 1\\)"
    ):
        problems_from_frame(twice, strategy_column="strategy")
