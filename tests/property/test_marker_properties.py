"""Laws of the marker language, checked on generated inputs."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from cascadec.lint import lint_paths
from cascadec.marker import Marker, MarkerTier, analyze_marker, canonical, marker_parser, parse_marker
from cascadec.registry import load_registry

REG = load_registry()
ALIASES = {a: REG.get(a) for a in REG.aliases()}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(from_lark(marker_parser()))
def test_strings_generated_from_the_grammar_parse(text):
    marker_parser().parse(text)  # syntax: never raises
    _, diagnostics = analyze_marker(text)
    assert not [d for d in diagnostics if d.code == "E100"]


temperatures = st.one_of(
    st.sampled_from([0.0, 0.1, 0.7, 1.0, 1.3, 2.0]),
    st.floats(min_value=0.0, max_value=2.0, allow_nan=False).map(lambda t: round(t, 4)),
)


@st.composite
def tiers(draw):
    alias = draw(st.sampled_from(sorted(ALIASES)))
    t = draw(temperatures)
    k = 1 if t == 0.0 else draw(st.integers(min_value=1, max_value=64))
    return MarkerTier(alias=alias, model=ALIASES[alias].id, k=k, temperature=t)


@st.composite
def markers(draw):
    kind = draw(st.sampled_from(["plain", "mv", "cascade", "entropy_cascade"]))
    if kind == "plain":
        alias = draw(st.sampled_from(sorted(ALIASES)))
        entry = ALIASES[alias]
        full = draw(st.booleans())
        return Marker(kind="plain", tiers=(MarkerTier(alias=None if full else alias, model=entry.id),))
    n = 1 if kind == "mv" else draw(st.integers(min_value=1, max_value=4))
    return Marker(kind=kind, tiers=tuple(draw(tiers()) for _ in range(n)))


@settings(max_examples=300)
@given(markers())
def test_print_then_parse_is_identity(m):
    assert parse_marker(str(m)) == m


@settings(max_examples=200)
@given(markers())
def test_canonicalisation_is_idempotent(m):
    once = canonical(str(m))
    assert canonical(once) == once == str(m)


@settings(max_examples=200)
@given(st.text(alphabet=string.printable + "é→\x00", max_size=80))
def test_analyze_never_raises_on_arbitrary_text(text):
    marker, diagnostics = analyze_marker(text)
    assert (marker is None) == any(d.is_error for d in diagnostics)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_lint_never_raises_on_arbitrary_bytes(tmp_path, data):
    f = tmp_path / "input.txt"
    f.write_bytes(data)
    result = lint_paths([str(f)])
    assert result.exit_code() in (0, 1, 2)
