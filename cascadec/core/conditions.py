"""The condition language (AST and evaluator) of ``escalate_if`` / ``retry.when`` / ``explore.when``.

Text is parsed with ``grammars/condition.lark`` into a small frozen AST, type-checked
(signals are numbers, ``and``/``or``/``not`` need booleans, the whole must be boolean) and
evaluated by walking the AST — never by ``eval``. ``str(cond)`` is the canonical text the
plan stores; ``parse_condition(str(c)) == c`` for every parsed condition.

Signals (what the runtime measures on a tier's k samples; the registry is
:data:`cascadec.core.signals.SIGNALS`):

==============  =====================================================  ================
agreement       size of the largest answer cluster / k                 0..1, step 1/k
margin          (largest - second largest cluster) / k                 0..1, step 1/k
no_answer       samples without an extractable answer / k              0..1, step 1/k
entropy         Shannon entropy (nats) of the answer-cluster shares    0..ln k
                among answered samples
mean_logprob    mean token log-probability over the tier's samples     <= 0
token_entropy   mean per-token entropy (nats) from the logprobs        >= 0
tokens          generated tokens, summed over the tier's samples       integer >= 0
k               samples drawn at this tier so far                      integer >= 1
weighted_agreement  the winner's share of the vote's weight (vote      0..1, real; {0, 1}
                policy: majority = agreement, weighted/filtered =      at k = 1
                trace confidence; non-answering kept samples count)
hybrid          sqrt(agreement x weighted_agreement): high only when   0..1, real
                the count and the confidence agree
confidence      mean trace confidence (the vote's metric) of the tier  >= 0
winner_conf     mean trace confidence of the winner's samples          >= 0
token_conf      mean token confidence (-mean top-L logprob)            >= 0
lowest_group_conf  mean over samples of the lowest group confidence    >= 0
bottom10_conf   mean over samples of the bottom-10% groups' mean       >= 0
tail_conf       mean over samples of the tail confidence               >= 0
==============  =====================================================  ================

The confidence signals (DeepConf; ``cascadec.runtime.confidence``) come from per-token top-L
logprobs with the strategy's ``vote.window`` / ``vote.tail``; NaN (a condition over them
never fires) when the backend returned none.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from cascadec.core.printer import format_number
from cascadec.core.signals import SIGNALS
from cascadec.errors import Diagnostic, SpecError, caret_excerpt
from cascadec.resources import grammar_text


# --- the AST ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """A node of the condition AST; a parsed condition's root is boolean-valued."""

    line: int = field(default=1, compare=False, repr=False, kw_only=True)
    column: int = field(default=1, compare=False, repr=False, kw_only=True)

    _level = 5  # printing precedence: or 1, and 2, not 3, compare 4, atom 5

    def evaluate(self, signals: Mapping[str, float]) -> bool:
        """True when the condition holds for these measured signals."""
        return bool(self._value(signals))

    def signals(self) -> frozenset[str]:
        return frozenset(n.name for n in self.walk() if isinstance(n, Signal))

    def walk(self):
        yield self
        for child in self.children():
            yield from child.walk()

    def children(self) -> tuple[Condition, ...]:
        return ()

    def _value(self, signals: Mapping[str, float]) -> float | bool:
        raise NotImplementedError

    def _wrap(self, child: Condition, level: int) -> str:
        return f"({child})" if child._level < level else str(child)


@dataclass(frozen=True)
class Signal(Condition):
    name: str

    def __str__(self) -> str:
        return self.name

    def _value(self, signals):
        try:
            return float(signals[self.name])
        except KeyError:
            raise KeyError(f"condition needs signal {self.name!r}, which was not measured") from None


@dataclass(frozen=True)
class Number(Condition):
    value: float

    def __str__(self) -> str:
        return format_number(self.value)

    def _value(self, signals):
        return self.value


@dataclass(frozen=True)
class Bool(Condition):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"

    def _value(self, signals):
        return self.value


COMPARISONS = {  # the condition language's comparison operators (the simulator applies them to arrays)
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Compare(Condition):
    left: Condition
    op: str
    right: Condition
    _level = 4

    def children(self):
        return (self.left, self.right)

    def __str__(self) -> str:
        return f"{self._wrap(self.left, 5)} {self.op} {self._wrap(self.right, 5)}"

    def _value(self, signals):
        return COMPARISONS[self.op](self.left._value(signals), self.right._value(signals))


@dataclass(frozen=True)
class Not(Condition):
    operand: Condition
    _level = 3

    def children(self):
        return (self.operand,)

    def __str__(self) -> str:
        return f"not {self._wrap(self.operand, 3)}"

    def _value(self, signals):
        return not self.operand._value(signals)


@dataclass(frozen=True)
class _NAry(Condition):
    operands: tuple[Condition, ...]
    _word = ""

    def __post_init__(self):  # (a and b) and c is a and b and c: one canonical shape
        flat: list[Condition] = []
        for o in self.operands:
            flat.extend(o.operands if type(o) is type(self) else (o,))
        object.__setattr__(self, "operands", tuple(flat))

    def children(self):
        return self.operands

    def __str__(self) -> str:
        return f" {self._word} ".join(self._wrap(o, self._level + 1) for o in self.operands)


@dataclass(frozen=True)
class And(_NAry):
    _level = 2
    _word = "and"

    def _value(self, signals):
        return all(o._value(signals) for o in self.operands)


@dataclass(frozen=True)
class Or(_NAry):
    _level = 1
    _word = "or"

    def _value(self, signals):
        return any(o._value(signals) for o in self.operands)


# --- parsing --------------------------------------------------------------------------------
MAX_LENGTH = 500  # conditions are one line of intent; the bounds keep the AST walks shallow
MAX_DEPTH = 32


@cache
def _parser() -> Lark:
    return Lark(grammar_text("condition.lark"), parser="lalr", strict=True, propagate_positions=True)


class _ToAst(Transformer):
    def signal(self, c):
        return Signal(str(c[0]), line=c[0].line, column=c[0].column)

    def number(self, c):
        return Number(float(c[0]), line=c[0].line, column=c[0].column)

    def true(self, c):
        return Bool(True, line=c[0].line, column=c[0].column)

    def false(self, c):
        return Bool(False, line=c[0].line, column=c[0].column)

    def compare(self, c):
        return Compare(c[0], str(c[1]), c[2], line=c[0].line, column=c[0].column)

    def not_(self, c):
        return Not(c[0], line=c[0].line, column=max(c[0].column - 4, 1))

    def and_(self, c):
        return And((c[0], c[1]), line=c[0].line, column=c[0].column)

    def or_(self, c):
        return Or((c[0], c[1]), line=c[0].line, column=c[0].column)


_FRIENDLY = {
    "NAME": "a signal",
    "NUMBER": "a number",
    "COMP_OP": "a comparison (<, <=, ==, ...)",
    "LPAR": "'('",
    "RPAR": "')'",
    "NOT": "'not'",
    "AND": "'and'",
    "OR": "'or'",
    "TRUE": "true",
    "FALSE": "false",
    "$END": "the end",
}


def analyze_condition(
    text: str, *, source: str = "<condition>", line: int = 1, column: int = 1
) -> tuple[Condition | None, list[Diagnostic]]:
    """Parse and type-check; diagnostics are placed at ``line``/``column`` of the enclosing file."""

    def diag(code: str, msg: str, ln: int, col: int, width: int = 1, fix: str | None = None) -> Diagnostic:
        excerpt = caret_excerpt(text, ln, col, width)
        at_line = line + ln - 1
        at_col = column + col - 1 if ln == 1 else col
        return Diagnostic(code, msg, at_line, at_col, source, excerpt, fix, at_col + width)

    if not text.strip():
        return None, [diag("E210", "empty condition", 1, 1, fix="e.g. 'agreement < 0.75'")]
    if len(text) > MAX_LENGTH or _depth(text) > MAX_DEPTH:
        why = (
            f"longer than {MAX_LENGTH} characters"
            if len(text) > MAX_LENGTH
            else f"nested deeper than {MAX_DEPTH}"
        )
        return None, [diag("E210", f"condition is {why}", 1, 1)]
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        return None, [_syntax_diag(exc, text, diag)]
    cond = _ToAst().transform(tree)
    diags: list[Diagnostic] = []
    for node in cond.walk():
        if isinstance(node, Signal) and node.name not in SIGNALS:
            near = difflib.get_close_matches(node.name, list(SIGNALS), n=2, cutoff=0.6)
            fix = f"did you mean {' or '.join(near)}?" if near else f"signals: {', '.join(SIGNALS)}"
            diags.append(
                diag("E211", f"unknown signal {node.name!r}", node.line, node.column, len(node.name), fix)
            )
        if isinstance(node, Number) and not math.isfinite(node.value):
            diags.append(diag("E212", "number out of range", node.line, node.column))
    if not diags:
        _check_types(cond, "bool", "the condition", diags, diag)
    return (None if diags else cond), diags


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        deepest = max(deepest, depth)
    return deepest


def parse_condition(text: str, *, source: str = "<condition>", line: int = 1, column: int = 1) -> Condition:
    """Parse condition text into its AST. Raises SpecError (E210/E211/E212) with located diagnostics."""
    cond, diags = analyze_condition(text, source=source, line=line, column=column)
    if cond is None:
        raise SpecError(diags[0].message, code=diags[0].code, diagnostics=diags)
    return cond


def _syntax_diag(exc: UnexpectedInput, text: str, diag) -> Diagnostic:
    ln, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        return diag("E210", f"unexpected character {text[exc.pos_in_stream]!r} in condition", ln, col)
    token = getattr(exc, "token", None)
    expected = sorted({_FRIENDLY.get(t, t) for t in getattr(exc, "expected", ()) or ()})
    want = f"; expected {', '.join(expected)}" if expected else ""
    if token is None or (isinstance(exc, UnexpectedToken) and token.type == "$END"):
        lines = text.splitlines() or [""]
        return diag("E210", f"condition ends too early{want}", len(lines), len(lines[-1]) + 1)
    assert isinstance(token, Token)
    return diag("E210", f"unexpected {str(token)!r} in condition{want}", token.line, token.column, len(token))


def _type_of(node: Condition) -> str:
    return "number" if isinstance(node, Signal | Number) else "bool"


def _check_types(node: Condition, want: str, role: str, diags: list[Diagnostic], diag) -> None:
    got = _type_of(node)
    if got != want:
        what = "a number" if got == "number" else "a true/false test"
        need = "a true/false test (e.g. 'agreement < 0.75')" if want == "bool" else "a number or a signal"
        diags.append(
            diag(
                "E212",
                f"{role} must be {need}, but {str(node)!r} is {what}",
                node.line,
                node.column,
                len(str(node)),
            )
        )
        return
    if isinstance(node, Compare):
        _check_types(node.left, "number", f"the left side of {node.op!r}", diags, diag)
        _check_types(node.right, "number", f"the right side of {node.op!r}", diags, diag)
    elif isinstance(node, Not):
        _check_types(node.operand, "bool", "the operand of 'not'", diags, diag)
    elif isinstance(node, And | Or):
        for o in node.operands:
            _check_types(o, "bool", f"each side of {node._word!r}", diags, diag)
