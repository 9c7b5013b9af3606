"""Typed run artifacts: nested parquet types, versioned manifest, typed load_results, clear refusals."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadec.api import execute, prepare
from cascadec.errors import CascadecError, RunDirError
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.outcomes import Decision, FinishReason, Phase, StopReason
from cascadec.runtime.records import (
    RESULTS_SCHEMA_VERSION,
    Manifest,
    PathStep,
    ProblemRecord,
    SampleRecord,
    Signals,
    TierRecord,
    VoteCount,
    arrow_schema,
)
from cascadec.runtime.results import (
    MANIFEST,
    PROBLEMS_TABLE,
    SAMPLES_JOURNAL,
    SAMPLES_TABLE,
    load_results,
    problems_table,
    samples_table,
)
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier

PLAN = make_plan(
    [strategy("c", [tier("S", 4, escalate_if="agreement < 0.75"), tier("L", 1, 0.0)])],
    {"S": 1.5, "L": 72.0},
)
ANSWERS = {
    ("S", "p0"): ["1", "1", "1", "1"],
    ("S", "p1"): ["2", "x", "y", None],
    ("L", "p0"): ["1"],
    ("L", "p1"): ["2"],
}
FRAME = pd.DataFrame({"id": ["p0", "p1"], "problem": ["q0", "q1"], "answer": ["1", "2"]})


def run_into(out, resume=False):
    return execute(
        prepare(PLAN, FRAME),
        ReplayBackend(bank_from_answers(ANSWERS)),
        out=out,
        resume=resume,
        equivalence=Equivalence("exact"),
    )


def test_parquet_columns_are_nested_types(tmp_path):
    run_into(tmp_path / "run")
    schema = pq.read_schema(tmp_path / "run" / PROBLEMS_TABLE)
    assert schema.field("models").type == pa.list_(pa.string())
    tiers = schema.field("tiers").type
    assert pa.types.is_list(tiers) and pa.types.is_struct(tiers.value_type)
    tier_fields = {f.name: f.type for f in tiers.value_type}
    assert pa.types.is_struct(tier_fields["signals"]) and pa.types.is_list(tier_fields["votes"])
    assert pa.types.is_struct(schema.field("path").type.value_type)
    assert schema.metadata[b"cascadec.results_schema_version"] == str(RESULTS_SCHEMA_VERSION).encode()
    samples = pq.read_schema(tmp_path / "run" / SAMPLES_TABLE)
    assert samples.field("token_logprobs").type == pa.list_(pa.float32())  # compact token records


def test_load_results_is_typed(tmp_path):
    problems, samples, *_ = run_into(tmp_path / "run")
    loaded = load_results(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded, problems)
    pd.testing.assert_frame_equal(load_results(tmp_path / "run", samples=True), samples)
    p1 = loaded.set_index("id").loc["p1"]
    assert [s["decision"] for s in p1["path"]] == ["escalate", "stop"] and list(p1["models"]) == ["S", "L"]
    first = p1["tiers"][0]
    assert first["votes"] == [
        {"answer": "2", "count": 1},
        {"answer": "x", "count": 1},
        {"answer": "y", "count": 1},
    ]
    assert first["signals"]["agreement"] == 0.25 and first["signals"]["no_answer"] == 0.25
    assert first["signals"]["mean_logprob"] is not None
    # the nested columns work with pandas' Arrow accessors
    assert list(loaded["tiers"].list.len()) == [1, 2]
    assert loaded["correct"].dtype == "boolean" and loaded["correct"].all()
    assert set(samples["phase"]) == {"sample"} and set(samples["finish_reason"]) == {"stop"}


def test_manifest_is_a_valid_typed_record(tmp_path):
    run_into(tmp_path / "run")
    run_into(tmp_path / "run", resume=True)
    m = Manifest.model_validate_json((tmp_path / "run" / MANIFEST).read_text())
    assert m.schema_version == RESULTS_SCHEMA_VERSION and m.status == "complete"
    assert [s.resumed for s in m.sessions] == [False, True]
    assert m.sessions[0].models["S"].loads == 1 and m.sessions[1].models == {}
    assert m.run.backend == "replay" and set(m.run.models) == {"S", "L"}
    assert m.totals is not None and m.totals.problems == 2 and m.totals.accuracy == 1.0


@pytest.mark.parametrize("version", [1, 3])
def test_another_schema_version_is_refused_clearly(tmp_path, version):
    out = tmp_path / "run"
    run_into(out)
    data = json.loads((out / MANIFEST).read_text())
    data.pop("schema_version")
    data["schema_version" if version > 1 else "results_version"] = version
    (out / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(RunDirError, match=f"E502 results schema version {version} .*reads version 2"):
        load_results(out)
    # resuming refuses too: the edited manifest is no longer the file cascadec wrote (ownership)
    with pytest.raises(RunDirError, match="E502"):
        run_into(out, resume=True)


def test_load_results_of_unfinished_or_foreign_directories(tmp_path):
    with pytest.raises(RunDirError, match="not a cascadec run directory"):
        load_results(tmp_path)
    out = tmp_path / "run"
    run_into(out)
    (out / PROBLEMS_TABLE).unlink()
    with pytest.raises(RunDirError, match="not finished"):
        load_results(out)


def test_a_journal_line_of_the_wrong_shape_is_refused(tmp_path):
    out = tmp_path / "run"
    half = {k: v for k, v in ANSWERS.items() if k[0] != "L"}  # stops at L: the journals stay
    with pytest.raises(CascadecError):
        execute(
            prepare(PLAN, FRAME),
            ReplayBackend(bank_from_answers(half)),
            out=out,
            equivalence=Equivalence("exact"),
        )
    line = json.loads((out / SAMPLES_JOURNAL).read_text().splitlines()[0])
    line["phase"] = "warmup"
    with open(out / SAMPLES_JOURNAL, "a") as f:
        f.write(json.dumps(line) + "\n")
    with pytest.raises(RunDirError, match=r"samples.jsonl:\d+: E502 corrupt journal line.*phase"):
        run_into(out, resume=True)


# --- round trips through Arrow, for any record ------------------------------------------------
texts = st.text(max_size=8)
maybe_float = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def tier_records(draw):
    return TierRecord(
        tier=draw(st.integers(0, 5)),
        model=draw(texts),
        k=draw(st.integers(0, 64)),
        rounds=draw(st.integers(0, 8)),
        retries=draw(st.integers(0, 3)),
        explored=draw(st.booleans()),
        early_stopped=draw(st.booleans()),
        decision=draw(st.sampled_from(Decision)),
        votes=draw(st.lists(st.builds(VoteCount, answer=texts, count=st.integers(0, 64)), max_size=3)),
        signals=Signals(**{name: draw(maybe_float) for name in Signals.model_fields}),
    )


@st.composite
def problem_records(draw):
    tiers = draw(st.lists(tier_records(), max_size=3))
    return ProblemRecord(
        id=draw(texts),
        strategy=draw(texts),
        final_answer=draw(st.none() | texts),
        gold=draw(st.none() | texts),
        correct=draw(st.none() | st.booleans()),
        tiers_used=len(tiers),
        path=[PathStep(tier=t.tier, decision=t.decision) for t in tiers],
        models=[t.model for t in tiers],
        stop_reason=draw(st.sampled_from(StopReason)),
        tiers=tiers,
        samples=draw(st.integers(0, 100)),
        tokens=draw(st.integers(0, 10**9)),
        cost=draw(st.floats(0, 1e12)),
        seconds=draw(st.floats(0, 1e6)),
    )


sample_records = st.builds(
    SampleRecord,
    id=texts,
    strategy=texts,
    tier=st.integers(0, 5),
    model=texts,
    round=st.integers(0, 5),
    phase=st.sampled_from(Phase),
    sample_index=st.integers(0, 100),
    text=texts,
    answer=st.none() | texts,
    num_tokens=st.integers(0, 4096),
    finish_reason=st.sampled_from(FinishReason),
    mean_logprob=maybe_float,
    mean_entropy=maybe_float,
    temperature=maybe_float,
    seconds=st.floats(0, 100),
    token_logprobs=st.none() | st.lists(st.floats(-50, 0), max_size=4),
    token_confidence=st.none() | st.lists(st.floats(0, 50), max_size=4),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(problem_records(), max_size=4))
def test_problem_records_round_trip_through_arrow(records):
    table = problems_table(records)
    assert table.schema.equals(arrow_schema(ProblemRecord), check_metadata=True)
    assert [ProblemRecord.model_validate(row) for row in table.to_pylist()] == records


@settings(max_examples=50, deadline=None)
@given(st.lists(sample_records, max_size=4))
def test_sample_records_round_trip_through_arrow(records):
    rows = samples_table(records).to_pylist()
    assert [row.pop("votes") for row in rows] == [r.answer is not None for r in records]
    assert [SampleRecord.model_validate(row) for row in rows] == records


def test_records_import_no_engine():
    """`cascadec schema results` (a compile-side command) imports the records: they must stay light."""
    import subprocess
    import sys

    code = (
        "import sys, cascadec.runtime.records; "
        "print(sorted(m for m in ('vllm', 'torch', 'ray', 'openai', 'pyarrow', 'cascadec.runtime.executor') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
