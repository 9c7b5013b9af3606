"""Fuzzing where issue 24's bugs were: a run's samples read as a bank, simulation JSON read by
``report``, search-space templates and grids. Serve request bodies: tests/unit/test_serve_hostile.py.

Each property: the reader returns, or raises a ``CascadecError`` with a registered code that is
not internal — never another exception (exit 3), never a hang. A few seconds in the normal
suite; ``make fuzz`` runs many more examples (``CASCADEC_FUZZ_EXAMPLES``).
"""

import json
import math
import os
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadec.errors import CODES, CascadecError, ExitCode

EXAMPLES = int(os.environ.get("CASCADEC_FUZZ_EXAMPLES", "20"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["0", "1.5", "yes", "", "$x$", "\ufeff"])
)
junk = st.recursive(
    leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=10,
)


def clean(fn, *args, **kw):
    """``fn`` returns, or raises a CascadecError with a registered, non-internal code."""
    try:
        return fn(*args, **kw)
    except CascadecError as exc:
        assert exc.code in CODES and CODES[exc.code].exit is not ExitCode.INTERNAL, exc
        return None


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz24")


@pytest.fixture(scope="module")
def run_samples():
    """A run's samples.parquet as a frame (the columns a run writes)."""
    rows = []
    for pid in ("a", "b"):
        for i in range(3):
            rows.append(
                {
                    "id": pid, "strategy": "s", "tier": 0, "model": "S", "round": 0, "phase": "sample",
                    "sample_index": i, "text": f"The answer is \\boxed{{{i}}}.", "answer": str(i), "votes": True,
                    "num_tokens": 10 + i, "finish_reason": "stop", "mean_logprob": -0.5, "mean_entropy": 0.2,
                    "temperature": 0.7, "seconds": 0.0, "token_logprobs": [-0.5] * (10 + i),
                    "token_confidence": None, "score": None, "cost": None,
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


RUN_COLUMNS = [
    "id", "model", "sample_index", "text", "num_tokens", "finish_reason", "mean_logprob",
    "mean_entropy", "temperature", "token_logprobs", "token_confidence", "score", "cost",
]  # fmt: skip


@FUZZ
@given(st.sampled_from(RUN_COLUMNS), junk, st.integers(0, 5), st.booleans())
def test_run_samples_read_as_a_bank(tmp, run_samples, column, value, row, whole_column):
    """Validate, then convert: any cell of a run's samples, as a frame or a parquet file."""
    from cascadec.runtime.backends.replay import read_bank

    df = run_samples.copy()
    cells = df[column].astype(object).tolist()
    if whole_column:
        cells = [value] * len(cells)
    else:
        cells[row] = value
    df[column] = pd.Series(cells, dtype=object)
    clean(read_bank, df)
    path = tmp / f"{uuid.uuid4().hex}.parquet"
    try:
        df.to_parquet(path, index=False)
    except Exception:  # pyarrow cannot store this mix: nothing for cascadec to read
        return
    clean(read_bank, path)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["S", "L"]),
            st.sampled_from(["p0", "p1"]),
            st.integers(0, 2),
            st.sampled_from(["1", "2"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_duplicate_bank_rows_are_one_sample_or_refused(rows):
    """A bank never keeps the first of two different samples of one key (first-wins is gone)."""
    from cascadec.runtime.backends.replay import read_bank
    from cascadec.runtime.testing import sample_text

    frame = pd.DataFrame(
        [
            {"model": m, "problem_id": p, "sample_index": i, "text": sample_text(a)[0], "num_tokens": 10}
            for m, p, i, a in rows
        ]
    )
    keys = {}
    conflict = False
    for m, p, i, a in rows:
        conflict |= keys.setdefault((m, p, i), a) != a
    try:
        bank = read_bank(frame)
    except CascadecError as exc:
        assert conflict and exc.code == "E500" and "one sample" in exc.message
        return
    assert not conflict and len(bank) == len(keys)


def _strategy_row(data) -> dict:
    """A strategy as simulate writes it (totals = per-problem sums), then maybe one field junk."""
    problems = data.draw(st.integers(0, 6))
    correct = [data.draw(st.booleans() | st.none()) for _ in range(problems)]
    costs = [data.draw(st.floats(0, 100)) for _ in range(problems)]
    graded = [c for c in correct if c is not None]
    row = {
        "strategy": data.draw(st.text(min_size=1, max_size=20) | st.sampled_from(["a$b", "$x$", "odd $"])),
        "problems": problems,
        "accuracy": sum(graded) / len(graded) if graded else None,
        "cost": sum(costs),
        "reached": [problems, data.draw(st.integers(0, problems))],
        "escalation_rates": [data.draw(st.floats(0, 1))],
        "per_problem": {"id": [str(i) for i in range(problems)], "correct": correct, "cost": costs},
    }
    if data.draw(st.booleans()):  # one field replaced by junk, or a list made long
        path = data.draw(
            st.sampled_from(
                [("strategy",), ("problems",), ("accuracy",), ("cost",), ("reached",), ("escalation_rates",),
                 ("per_problem",), ("per_problem", "correct"), ("per_problem", "id"), ("per_problem", "cost")]
            )
        )  # fmt: skip
        node = row
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = data.draw(junk | st.just([1] * 5000) | st.just("x" * 5000))
    return row


@FUZZ
@given(st.data())
def test_simulation_json_read_by_report(tmp, data):
    """Every field of a simulation JSON checked before any figure: an Entry, or a located E500."""
    from cascadec.report.inputs import load_simulation

    body = {"strategies": [_strategy_row(data) for _ in range(data.draw(st.integers(1, 3)))]}
    path = tmp / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(body))
    t0 = time.perf_counter()
    entries = clean(load_simulation, path)
    assert time.perf_counter() - t0 < 5
    for e in entries or []:
        assert 0 <= len(e.reached) <= 16 and len(e.name) <= 1000
        assert e.accuracy is None or 0 <= e.accuracy <= 1
        assert math.isfinite(e.cost) and e.cost >= 0


@settings(FUZZ, max_examples=max(3, EXAMPLES // 4))  # each draws three figures
@given(st.data())
def test_report_draws_any_valid_simulation(tmp, data):
    """Names with '$' (matplotlib math text), empty per-problem lists: drawn, never an exit 3."""
    pytest.importorskip("matplotlib")
    from cascadec.report.build import build_report

    rows = []
    for _ in range(data.draw(st.integers(1, 2))):
        row = _strategy_row(data)
        rows.append(row)
    path = tmp / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"strategies": rows}))
    clean(build_report, [path], tmp / uuid.uuid4().hex)


SPACE = """version: 1
name: s
models: zoo
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 1.1M}
search:
  tiers:
    - {k: [2, 4], escalate_if: TEMPLATE, grid: GRID}
    - {}
"""
pieces = st.sampled_from(
    ["agreement < ", "{a}", "{b}", "{}", "{0}", "{a", "}", "{{", "}}", "{a:>9}", "{a!r}", "{a.b}", "{a[0]}",
     " or mean_logprob < ", " and ", "(", ")", "０.５", "1.0", " margin > "]
)  # fmt: skip
grids = st.dictionaries(
    st.sampled_from(["a", "b", "c", "0", "a b", ""]),
    st.lists(st.floats(-2, 2) | st.integers(-5, 5) | st.just(float("nan")), max_size=400),
    max_size=4,
)


@FUZZ
@given(st.lists(pieces, min_size=1, max_size=8).map("".join), grids)
def test_search_space_templates_and_grids(tmp, template, grid):
    """Any template and grid: a located E2xx or a space — fast, whatever its size, in lint,
    compile --check and the expansion calibrate and optimize use alike."""
    from cascadec.compiler.space import check_space
    from cascadec.sim.space import compile_base, expand, load_space

    text = SPACE.replace("TEMPLATE", json.dumps(template)).replace("GRID", json.dumps(grid))
    path = Path(tmp) / f"{uuid.uuid4().hex}.yaml"
    path.write_text(text)
    t0 = time.perf_counter()
    found = check_space(path)
    assert all(d.code != "E999" for d in found.diagnostics), found.diagnostics
    loaded = clean(load_space, path)
    if loaded is not None and found.ok:
        base, space = loaded
        clean(expand, base, space, compile_base(base, path))
    assert time.perf_counter() - t0 < 20
