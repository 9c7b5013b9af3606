"""Problem tables and sample banks: every bad cell is a located E500 before any run starts."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from cascadec.errors import DataError
from cascadec.runtime.backends.replay import read_bank
from cascadec.runtime.data import problems_from_frame
from cascadec.runtime.testing import bank_from_answers

BANK = bank_from_answers({("S", "p0"): ["1", "2"], ("S", "p1"): ["3", None]})


def bank_with(column, value, row=1):
    df = BANK.copy()
    df[column] = df[column].astype(object) if column in df else None
    df.at[row, column] = value
    return df


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("num_tokens", float("nan"), "'num_tokens' must be an integer"),
        ("num_tokens", "12", "'num_tokens' must be an integer"),
        ("num_tokens", 2**70, "'num_tokens' must be in [0, 1000000]"),  # overflowed at finalize
        ("num_tokens", -5, "'num_tokens' must be in [0, 1000000]"),  # negative cost
        ("num_tokens", True, "'num_tokens' must be an integer"),
        ("sample_index", 1.5, "'sample_index' must be an integer"),  # once truncated to 1
        ("sample_index", -1, "'sample_index' must be in"),
        ("problem_id", b"p0", "'problem_id' must be text, got bytes"),
        ("problem_id", {"a": 1}, "'problem_id' must be text, got dict"),
        ("model", None, "'model' is empty"),
        ("text", ["a"], "'text' must be text, got list"),
        ("logprobs", [0.1, -1.0], "above 0"),
        ("logprobs", [float("nan")], "not a finite number"),
        ("logprobs", ["x"], "not a finite number"),
        ("logprobs", "abc", "must be a list of numbers"),
        ("temperature", 7.0, "'temperature' must be in [0, 2]"),
    ],
)
def test_bad_bank_cells_are_located(column, value, message):
    with pytest.raises(DataError) as info:
        read_bank(bank_with(column, value))
    assert message in info.value.message and info.value.where == "<bank frame>: row 1"


def test_good_bank_is_typed():
    df = bank_with("sample_index", 1.0)  # an integral float is an integer
    df["problem_id"] = [0, 0, 1, 1]
    typed = read_bank(df)
    assert typed["sample_index"].dtype == np.int64 and list(typed["problem_id"]) == ["0", "0", "1", "1"]


def test_long_cells_are_cut_in_messages():
    with pytest.raises(DataError) as info:
        read_bank(bank_with("problem_id", b"x" * 100_000))
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("id", b"p1", "'id' must be text, got bytes"),
        ("problem", {"text": "1+1"}, "'problem' must be text, got dict"),
        ("problem", ["1+1"], "'problem' must be text, got list"),
        ("answer", {"a": 2}, "'answer' must be text, got dict"),
        ("problem", "x" * 1_000_001, "at most 1000000"),
    ],
)
def test_bad_problem_cells_are_located(column, value, message):
    df = pd.DataFrame({"id": ["p0", "p1"], "problem": ["1+1", "2+2"], "answer": ["2", "4"]}).astype(object)
    df.at[1, column] = value
    with pytest.raises(DataError) as info:
        problems_from_frame(df, source="t.jsonl")
    assert message in info.value.message and info.value.where.startswith("t.jsonl: row 1")


def test_bad_bank_fails_before_the_run_directory_exists(tmp_path):
    from cascadec.plan import plan_to_json
    from tests.unit.test_hostile_inputs import PLAN, cascadec

    (tmp_path / "plan.json").write_text(plan_to_json(PLAN))
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "p0", "problem": "1+1", "answer": "2"}) + "\n")
    bank = bank_from_answers({("S", "p0"): ["2"] * 4, ("L", "p0"): ["2"]})
    bank["num_tokens"] = bank["num_tokens"].astype(float)
    bank.loc[2, "num_tokens"] = math.nan
    bank.to_parquet(tmp_path / "bank.parquet")
    out = tmp_path / "out"
    r = cascadec(
        "run", tmp_path / "plan.json", "--data", tmp_path / "d.jsonl", "--out", out,
        "--backend", "replay", "--bank", tmp_path / "bank.parquet",
    )  # fmt: skip
    assert "bank.parquet: row 2: E500 'num_tokens' must be an integer, got nan" in r.text
    assert not out.exists()  # a corrected rerun is not refused
