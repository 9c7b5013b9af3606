"""Fuzzing every input kind: arbitrary text, bytes and structured junk never cause an internal error.

The property for each loader: it returns, or raises a ``CascadecError`` (a located message with
a registered code that exits 1 or 2) — never another exception (the CLI's exit 3, a traceback).
A few seconds in the normal suite; ``make fuzz`` runs many more examples
(``CASCADEC_FUZZ_EXAMPLES``).
"""

import json
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadec.errors import CODES, CascadecError, ExitCode
from cascadec.plan import plan_to_json
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier

EXAMPLES = int(os.environ.get("CASCADEC_FUZZ_EXAMPLES", "20"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PLAN = json.loads(
    plan_to_json(
        make_plan(
            [strategy("c", [tier("S", 4, escalate_if="agreement < 0.75"), tier("L", 1, 0.0)])],
            {"S": 1.5, "L": 72},
        )
    )
)
SPEC = "version: 1\nname: s\nstrategy:\n  cascade:\n    - {model: 1.5B, k: 4, temperature: 0.7}\n    - {model: 72B}\n"

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_junk = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)
texts = st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1"))


def expect_clean(fn, *args, **kw):
    """Run ``fn``: fine, or a CascadecError with a registered code that is not internal."""
    try:
        return fn(*args, **kw)
    except CascadecError as exc:
        assert exc.code in CODES and CODES[exc.code].exit is not ExitCode.INTERNAL, exc
        assert str(exc)
        return None


def write(tmp: Path, suffix: str, data: str | bytes) -> Path:
    path = tmp / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(texts)
def test_markers(text):
    from cascadec.compiler import compile_marker
    from cascadec.marker import analyze_marker

    analyze_marker(text)  # never raises
    expect_clean(compile_marker, text)


def _mutate_lines(base: str, data) -> str:
    lines = base.splitlines()
    i = data.draw(st.integers(0, len(lines)))
    return "\n".join([*lines[:i], data.draw(st.text(max_size=60)), *lines[i:]])


@FUZZ
@given(st.one_of(texts.map(str), st.binary(max_size=200)), st.data())
def test_specs(tmp, junk, data):
    from cascadec.compiler import check_spec_file, compile_spec
    from cascadec.lint import lint_paths

    for content in (junk, _mutate_lines(SPEC, data)):
        path = write(tmp, ".yaml", content)
        expect_clean(compile_spec, path)
        assert all(d.code != "E999" for d in check_spec_file(path))
        result = lint_paths([str(path)])
        assert all(d.code != "E999" for d in result.diagnostics)


@FUZZ
@given(json_junk, st.data())
def test_registries(tmp, junk, data):
    import yaml

    from cascadec.registry import load_registry

    models = [{"id": "a/b", "aliases": ["1B"], "params": 1.0}]
    doc = data.draw(
        st.sampled_from(
            [
                junk,
                {"models": junk},
                {"models": [junk]},
                {"models": models, data.draw(st.text(max_size=5)): junk},
            ]
        )
    )
    path = write(tmp, ".yaml", yaml.safe_dump(doc, allow_unicode=True))
    expect_clean(load_registry, path)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@FUZZ
@given(st.data())
def test_plans(tmp, data):
    from cascadec.compiler import verify_plan
    from cascadec.plan import Plan, content_hash, load_plan

    plan = json.loads(json.dumps(PLAN))
    where = data.draw(st.sampled_from([p for p in _paths(plan) if p]))
    node = plan
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = data.draw(json_junk)
    if data.draw(st.booleans()):  # a plan re-hashed after the edit: only the checks stand in the way
        try:
            plan["hash"] = content_hash(Plan.model_validate({**plan, "hash": ""}))
        except Exception:
            pass
    path = write(tmp, ".json", json.dumps(plan))
    loaded = expect_clean(load_plan, path)
    if loaded is not None:
        expect_clean(verify_plan, loaded)


@FUZZ
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["id", "problem", "answer", "difficulty", "question", "x"]), json_junk, max_size=5
        ),
        min_size=1,
        max_size=5,
    ),
    st.binary(max_size=100),
)
def test_data_tables(tmp, rows, raw):
    from cascadec.runtime.data import problems_from_frame, read_table

    for path in (
        write(tmp, ".jsonl", "".join(json.dumps(r) + "\n" for r in rows)),
        write(tmp, ".csv", raw),
        write(tmp, ".jsonl", raw),
    ):
        df = expect_clean(read_table, path)
        if df is not None:
            expect_clean(problems_from_frame, df, source=str(path), feature_columns=["difficulty"])


@FUZZ
@given(
    st.sampled_from(
        [
            "model",
            "problem_id",
            "sample_index",
            "text",
            "num_tokens",
            "finish_reason",
            "logprobs",
            "temperature",
        ]
    ),
    json_junk,
    st.booleans(),
)
def test_banks(tmp, column, value, as_file):
    from cascadec.runtime.backends.replay import read_bank

    df = bank_from_answers({("S", "p0"): ["1", "2"]})
    df[column] = [value, df[column].iloc[1]] if column in df else [value, None]
    if as_file:
        path = tmp / f"{uuid.uuid4().hex}.parquet"
        try:
            df.to_parquet(path)
        except Exception:  # pyarrow refuses mixed columns: nothing to read then
            return
        expect_clean(read_bank, path)
    else:
        expect_clean(read_bank, df)


SPACE = (
    "version: 1\nname: s\nmodels: zoo\ndefaults: {max_tokens: 48, prompt: raw}\nstrategy:\n  cascade:\n"
    "    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: 'agreement < 1.0'}\n"
    "    - {model: 1.1M}\n"
    "search:\n  tiers:\n    - {k: [2, 4], escalate_if: 'agreement < {a}', grid: {a: [0.75, 1.0]}}\n    - {}\n"
    "  early_stop: [null, 1]\n"
)


@FUZZ
@given(json_junk, st.data())
def test_search_spaces(tmp, junk, data):
    """``calibrate``'s input: a spec with a ``search:`` section, loaded, compiled and expanded."""
    import yaml

    from cascadec.sim.space import compile_base, expand, load_space

    doc = yaml.safe_load(SPACE)
    where = data.draw(st.sampled_from(["search", "tiers", "tier", "early_stop", "grid", "key", "text"]))
    if where == "search":
        doc["search"] = junk
    elif where == "tiers":
        doc["search"]["tiers"] = junk
    elif where == "tier":
        doc["search"]["tiers"][0] = junk
    elif where == "grid":
        doc["search"]["tiers"][0]["grid"] = {"a": junk}
    elif where == "early_stop":
        doc["search"]["early_stop"] = junk
    else:
        doc["search"][data.draw(st.text(max_size=6))] = junk
    text = yaml.safe_dump(doc, allow_unicode=True) if where != "text" else _mutate_lines(SPACE, data)
    path = write(tmp, ".yaml", text)

    def load_all():
        base, space = load_space(path)
        return expand(base, space, compile_base(base, path))

    expect_clean(load_all)
