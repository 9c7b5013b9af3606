"""The marker language: seed markers, canonical form, every diagnostic with its position."""

import pytest

import cascadec
from cascadec import CascadecError, MarkerError, parse_marker
from cascadec.marker import analyze_marker, canonical

SEED = {
    "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0": (
        "cascade",
        [
            ("1.5B", "Qwen/Qwen2.5-Math-1.5B-Instruct", 4, 0.7),
            ("7B", "Qwen/Qwen2.5-Math-7B-Instruct", 4, 0.7),
            ("72B", "Qwen/Qwen2.5-Math-72B-Instruct", 1, 0.0),
        ],
    ),
    "mv_entropy_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0": ("entropy_cascade", None),
    "mv_cascade_7B_k5_t0.7_72B_k1_t0.0": (
        "cascade",
        [("7B", "Qwen/Qwen2.5-Math-7B-Instruct", 5, 0.7), ("72B", "Qwen/Qwen2.5-Math-72B-Instruct", 1, 0.0)],
    ),
    "mv_1.5B_k8_t0.7": ("mv", [("1.5B", "Qwen/Qwen2.5-Math-1.5B-Instruct", 8, 0.7)]),
    "Qwen/Qwen2.5-Math-7B-Instruct": ("plain", [(None, "Qwen/Qwen2.5-Math-7B-Instruct", 1, 0.0)]),
    "7B": ("plain", [("7B", "Qwen/Qwen2.5-Math-7B-Instruct", 1, 0.0)]),
}


@pytest.mark.parametrize("text", sorted(SEED))
def test_seed_markers_parse_and_print_back_byte_for_byte(text):
    kind, tiers = SEED[text]
    m = parse_marker(text)
    assert m.kind == kind
    assert str(m) == text
    if tiers is not None:
        assert [(t.alias, t.model, t.k, t.temperature) for t in m.tiers] == tiers
    assert m.warnings == ()


def test_public_api_names():
    assert cascadec.parse_marker is parse_marker
    assert issubclass(cascadec.MarkerError, cascadec.CascadecError)


@pytest.mark.parametrize(
    "text, canon",
    [
        ("mv_1.5B_k8_t0.70", "mv_1.5B_k8_t0.7"),
        ("mv_1.5B_k08_t1", "mv_1.5B_k8_t1.0"),
        ("mv_1.5B_k8_t00.50", "mv_1.5B_k8_t0.5"),
        ("mv_cascade_1.5B_k4_t0.700_72B_k1_t0", "mv_cascade_1.5B_k4_t0.7_72B_k1_t0.0"),
        ("  7B  ", "7B"),
        ("mv_1.5B_k2_t2", "mv_1.5B_k2_t2.0"),
    ],
)
def test_other_spellings_normalise(text, canon):
    assert canonical(text) == canon
    assert canonical(canon) == canon


def test_marker_is_frozen_and_hashable():
    m = parse_marker("mv_1.5B_k8_t0.7")
    with pytest.raises(AttributeError):
        m.kind = "plain"  # type: ignore[misc]
    assert hash(m) == hash(parse_marker("mv_1.5B_k8_t0.70"))


ERRORS = [
    # text, code, column
    ("", "E101", 1),
    ("   ", "E101", 1),
    ("mv_1.5B_k0_t0.7", "E102", 10),
    ("mv_1.5B_k-1_t0.7", "E102", 10),
    ("mv_1.5B_k4_t2.5", "E103", 13),
    ("mv_1.5B_k4_t-0.5", "E103", 13),
    ("mv_1.5B_k4_t99", "E103", 13),
    ("mv_1.5B_k4_t0.0", "E104", 10),
    ("mv_3B_k4_t0.7", "E105", 4),
    ("mv_cascade_1.5B_k4_t0.7_8B_k4_t0.7", "E105", 25),
    ("3B", "E105", 1),
    ("mv_1.5B_k4_t0.7_", "E100", 16),
    ("mv_cascade_1.5B_k4_t0.7_", "E100", 25),
    ("mv_", "E100", 4),
    ("mv_1.5B_k4", "E100", 11),
    ("mv_1.5B_t0.7", "E100", 9),
    ("mv_1.5B_k4.5_t0.7", "E100", 11),
    ("mv_cascade_1.5B_k4_t0.7__7B_k4_t0.7", "E100", 25),
    ("mvx", "E100", 3),
    ("mv_cascad_1.5B_k4_t0.7", "E100", 10),
    ("mv_1.5B_k4_t0.7x", "E100", 16),
    ("_mv", "E100", 1),
    ("mv_1.5B\n_k4_t0.7", "E100", 8),
]


@pytest.mark.parametrize("text, code, column", ERRORS)
def test_errors_are_located(text, code, column):
    with pytest.raises(MarkerError) as info:
        parse_marker(text)
    err = info.value
    assert isinstance(err, CascadecError)
    assert (err.code, err.line, err.column) == (code, 1, column), str(err)
    assert "^" in err.excerpt
    assert err.excerpt.splitlines()[-1].index("^") == column - 1


def test_unknown_size_suggests_close_match():
    with pytest.raises(MarkerError) as info:
        parse_marker("mv_cascade_1.5B_k4_t0.7_7b_k4_t0.7")
    assert "did you mean 7B?" in str(info.value)


WARNINGS = [
    ("mv_cascade_7B_k4_t0.7", "W101", 1),
    ("mv_entropy_cascade_7B_k4_t0.7", "W101", 1),
    ("mv_cascade_7B_k4_t0.7_1.5B_k4_t0.7", "W102", 23),
    ("mv_72B_k4_t0.7", "W103", 9),
    ("mv_72B_k1_t0.7", "W103", 12),
    ("mv_cascade_1.5B_k4_t0.7_72B_k4_t0.7", "W103", 30),
    ("Org/not-in-registry", "W104", 1),
]


@pytest.mark.parametrize("text, code, column", WARNINGS)
def test_warnings_do_not_stop_parsing(text, code, column):
    m = parse_marker(text)
    assert [(w.code, w.column) for w in m.warnings] == [(code, column)]
    assert str(m) == text  # the marker keeps what was written; the compiler enforces


def test_greedy_only_marker_keeps_written_values():
    m = parse_marker("mv_72B_k4_t0.7")
    assert (m.tiers[0].k, m.tiers[0].temperature) == (4, 0.7)


def test_analyze_never_raises_and_offsets_columns():
    marker, diags = analyze_marker("mv_1.5B_k0_t0.7", source="f.txt", line=7, column_offset=4)
    assert marker is None
    assert diags[0].format().startswith("f.txt:7:14: E102")


def test_other_registry(tmp_path):
    reg = tmp_path / "r.yaml"
    reg.write_text(
        "version: 1\nmodels:\n  - {id: org/small, aliases: [1M], params: 1.0e6}\n  - {id: org/big, aliases: [30M], params: 3.0e7}\n"
    )
    m = parse_marker("mv_cascade_1M_k4_t0.7_30M_k1_t0.0", registry=reg)
    assert m.models == ("org/small", "org/big")
    with pytest.raises(MarkerError) as info:
        parse_marker("mv_7B_k4_t0.7", registry=reg)
    assert info.value.code == "E105"


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError):
        parse_marker(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "mv_cascade_7B_k4_t0.7",  # W101
        "mv_cascade_7B_k4_t0.7_1.5B_k4_t0.7",  # W102
        "mv_cascade_1.5B_k4_t0.7_72B_k4_t0.7",  # W103
        "mv_72B_k1_t0.5",  # W103 on the temperature
        "Org/not-in-registry",  # W104
        "  mv_cascade_7B_k4_t0.7_1.5B_k4_t0.7",  # located past the blanks
    ],
)
def test_lint_and_compile_report_a_marker_alike(text):
    """One rule in cascadec.core.tier_rules, run once per path: lint's fast path and the compiler agree."""
    from cascadec.compiler import compile_marker

    _, linted = analyze_marker(text, source="t", line=3, column_offset=4)
    _, compiled = compile_marker(text, source="t", line=3, column=5)
    assert linted and [d for d in compiled if d.code in {x.code for x in linted}] == linted
