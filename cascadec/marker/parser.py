"""Marker text → typed ``Marker``, with located diagnostics.

Parsing is two steps: the Lark grammar (syntax; the grammar file is the source of truth)
and semantic checks over the tokens (ranges, registry resolution, cascade shape), so every
finding points at the exact token that caused it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from cascadec.core import tier_rules
from cascadec.errors import Diagnostic, MarkerError, caret_excerpt
from cascadec.limits import MAX_MARKER_CHARS
from cascadec.marker.ast import Kind, Marker, MarkerTier
from cascadec.marker.checks import MarkerPlace, TierTokens, check_tiers
from cascadec.registry import ModelRegistry, RegistryLike, resolve_registry
from cascadec.resources import grammar_text

_DESCRIBE = {
    "ALIAS": "a model size such as 7B",
    "K": "an integer k",
    "T": "a temperature such as 0.7",
    "MODEL_ID": "a model id such as Qwen/Qwen2.5-Math-7B-Instruct",
    "$END": "end of marker",
}


@cache
def marker_parser() -> Lark:
    return Lark(grammar_text("marker.lark"), parser="lalr", lexer="contextual")


def spellable(name: str, terminal: str) -> bool:
    """Whether ``name`` lexes as the grammar's ``terminal`` (``ALIAS`` or ``MODEL_ID``), read off the grammar."""
    return re.fullmatch(marker_parser().get_terminal(terminal).pattern.to_regexp(), name) is not None


def _registry(registry: RegistryLike) -> ModelRegistry:
    return resolve_registry(registry)


def _describe_expected(names: set[str] | frozenset[str]) -> str:
    parser = marker_parser()
    by_name = {t.name: t for t in parser.terminals}
    words = []
    for name in sorted(names):
        if name in _DESCRIBE:
            words.append(_DESCRIBE[name])
        elif name in by_name:
            words.append(repr(by_name[name].pattern.value))
    words = sorted(set(words))
    if not words:
        return ""
    return "expected " + (words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1])


def _literals(names) -> list[str]:
    by_name = {t.name: t for t in marker_parser().terminals}
    return [by_name[n].pattern.value for n in names if n in by_name and by_name[n].pattern.type == "str"]


def _common_prefix(text: str, literal: str) -> int:
    n = 0
    while n < min(len(text), len(literal)) and text[n] == literal[n]:
        n += 1
    return n


def _syntax_diagnostic(exc: UnexpectedInput, body: str) -> tuple[int, str]:
    """(1-based column in ``body``, message) of a Lark syntax error.

    The column is the first character where ``body`` stops being the start of some valid
    marker: Lark reports where a token failed to start, so keyword typos (``mvx``,
    ``mv_cascad_``, ``_x4``) are moved past the part of the keyword that was right.
    """
    if isinstance(exc, UnexpectedCharacters):
        pos, expected_names = exc.pos_in_stream, set(exc.allowed or ())
    elif isinstance(exc, UnexpectedToken):
        expected_names = set(exc.expected or ())
        pos = len(body) if exc.token.type == "$END" else exc.token.start_pos
    else:
        return getattr(exc, "column", 1) or 1, "invalid marker"
    candidates = [(pos + _common_prefix(body[pos:], lit), lit) for lit in _literals(expected_names)]
    candidates += [
        (n, lit)
        for lit in _literals(t.name for t in marker_parser().terminals)
        if lit.startswith("mv") and (n := _common_prefix(body, lit)) < len(lit)
    ]
    reach, keyword = max(candidates, default=(pos, ""), key=lambda c: (c[0], -len(c[1])))
    reach = max(reach, pos)
    expected = _describe_expected(expected_names)
    if reach > pos:
        expected = f"expected {keyword!r}"  # a keyword was misspelled part-way
    if reach >= len(body):
        return len(body) + 1, "unexpected end of marker" + (f"; {expected}" if expected else "")
    return reach + 1, f"unexpected character {body[reach]!r}" + (f"; {expected}" if expected else "")


def analyze_marker(
    text: str,
    registry: RegistryLike = None,
    *,
    source: str = "<marker>",
    line: int = 1,
    column_offset: int = 0,
    warnings: bool = True,
) -> tuple[Marker | None, list[Diagnostic]]:
    """Parse and check ``text``. Never raises for bad input: returns ``(None, errors)`` instead.

    ``line`` and ``column_offset`` place the marker inside a larger file (for lint). The
    compiler passes ``warnings=False``: it applies the warning rules itself (the same
    :mod:`cascadec.core.tier_rules`), located through ``Marker.place``.
    """
    reg = _registry(registry)
    lead = len(text) - len(text.lstrip())
    body = text.strip()
    offset = column_offset + lead
    place = MarkerPlace(body, source, line, offset if body else column_offset)
    diag = place.diag

    if not body:
        return None, [
            diag(
                "E101",
                "empty marker",
                1,
                fix="write a model alias such as 7B or a marker such as mv_7B_k4_t0.7",
            )
        ]
    if "\n" in body or "\r" in body:
        column = min(i for i in (body.find("\n"), body.find("\r")) if i >= 0) + 1
        return None, [diag("E100", "a marker is a single line", column)]
    if len(body) > MAX_MARKER_CHARS:  # bounded before the parser sees it (and a short excerpt)
        return None, [_too_long(body, line, offset, source)]
    foreign = next((i for i, ch in enumerate(body) if not ch.isascii()), None)
    if foreign is not None:  # a look-alike (Cyrillic В, full-width ４): the caret goes on it
        return None, [diag("E100", _foreign_message(body[foreign]), foreign + 1)]
    try:
        tree = marker_parser().parse(body)
    except UnexpectedInput as exc:
        column, message = _syntax_diagnostic(exc, body)
        return None, [diag("E100", message, column)]

    node: Tree = tree.children[0]
    kind: Kind = {"plain_id": "plain", "plain_alias": "plain"}.get(node.data, node.data)  # type: ignore[assignment]
    if kind == "plain":
        return _plain(node.children[0], reg, place, warnings)
    tier_nodes = [node.children[0]] if kind == "mv" else node.children[0].children
    tokens = [TierTokens(*t.children) for t in tier_nodes]
    place = place._replace(tiers=tuple(tokens))
    diagnostics = check_tiers(kind, tokens, reg, place, warnings=warnings)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    tiers = tuple(
        MarkerTier(
            alias=str(t.alias),
            model=reg.resolve(str(t.alias)).id,
            k=int(t.k),
            temperature=float(t.t) + 0.0,  # -0.0 is 0.0: t-0.0 prints back as t0.0
        )
        for t in tokens
    )
    return Marker(kind=kind, tiers=tiers, warnings=tuple(diagnostics), place=place), diagnostics


def _too_long(body: str, line: int, offset: int, source: str) -> Diagnostic:
    return Diagnostic(
        code="E100",
        message=f"marker is {len(body)} characters long; markers are at most {MAX_MARKER_CHARS}",
        line=line,
        column=MAX_MARKER_CHARS + 1 + offset,
        source=source,
        excerpt=caret_excerpt(body[: MAX_MARKER_CHARS + 1][-60:], 1, 60),
    )


def _foreign_message(ch: str) -> str:
    name = unicodedata.name(ch, f"U+{ord(ch):04X}")
    plain = unicodedata.normalize("NFKC", ch)
    hint = f"; did you mean {plain!r}?" if plain.isascii() and plain.isprintable() and plain else ""
    return f"unexpected character {ch!r} ({name}): markers are plain ASCII{hint}"


def _plain(
    token: Token, reg: ModelRegistry, place: MarkerPlace, warnings: bool
) -> tuple[Marker | None, list[Diagnostic]]:
    name = str(token)
    place = place._replace(tiers=(TierTokens(token, token, token),))
    entry, finding = tier_rules.resolve_model(0, name, reg)
    if entry is None:
        return None, [place.report(finding)]
    found = [place.report(finding)] if finding is not None and warnings else []
    tier = MarkerTier(alias=name if name != entry.id else None, model=entry.id)
    return Marker(kind="plain", tiers=(tier,), warnings=tuple(found), place=place), found


def parse_marker(text: str, registry: RegistryLike = None) -> Marker:
    """Parse a marker; raise ``MarkerError`` (first error, all of them in ``.diagnostics``)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_marker expects a str, got {type(text).__name__}")
    marker, diagnostics = analyze_marker(text, registry)
    errors = [d for d in diagnostics if d.is_error]
    if marker is None or errors:
        raise MarkerError(errors[0], diagnostics=errors)
    return marker


def canonical(text: str, registry: RegistryLike = None) -> str:
    """The canonical spelling of a valid marker: ``t0.70`` → ``t0.7``, ``k04`` → ``k4``."""
    return str(parse_marker(text, registry))
