"""Answer normalisation: spelling noise removed, values never changed (see :mod:`cascadec.runtime.answers`).

Normalisation makes equal answers usually equal strings, so the exact-match fast path of
:mod:`cascadec.runtime.equivalence` decides most pairs without sympy: spaces, ``$``, ``\\left``,
``\\dfrac``, thousands separators, units in ``\\text{}``, degrees go; ``7 3/4`` becomes the mixed
number ``\\frac{31}{4}``, while ``32, 349`` stays a list and ``0,111`` stays for the grader.
:func:`numeric_value` reads the exact value of a plain number for the grader's shortcuts.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_ANSWER_CHARS = 2_000  # a longer "answer" is not one: it would only burden the grader
CHOICE = re.compile(r"^\(?([A-J])\)?[.:]?$")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_TRAILING_TEXT = re.compile(r"^(.*?\d[^a-zA-Z\\]*?)\s*\\(?:text|mbox|mathrm)\s*\{[^{}]*\}(\^\{?\d\}?)?$")
_UNIT_WORDS = re.compile(
    r"^(-?[\d.,/]+)\s*(?:units?|cm|mm|km|m|meters?|inches|inch|feet|foot|ft|yards?|miles?|"
    r"degrees?|dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|years?|sq|square\s+\w+|"
    r"pounds?|ounces?|grams?|kg|g|liters?|mph|students|people|apples|ways)\.?(?:\^\{?\d\}?)?$",
    re.IGNORECASE,
)
_MIXED = re.compile(r"^(-?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_MIXED_FRAC = re.compile(r"^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})\s*(?:\\text\{\s*)?\s*([ap])\.?\s*m\.?\s*\}?$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH = re.compile(r"^(-?\d+)/(\d+)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_COMMAND_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])")
_LIST_WORD = re.compile(r",?\s*\\text\{\s*,?\s*(?:and|or)\s*\}\s*|,?\s+(?:and|or)\s+")
_PERCENT_WORD = re.compile(r"\s*(?:percentage|percent|per\s+cent|pct)\b\.?", re.IGNORECASE)


def normalize(answer: str) -> str:
    """Remove spelling noise so that the exact-match fast path catches most equal answers.

    Idempotent: ``normalize(normalize(s)) == normalize(s)`` (one pass, repeated to a fixed point).
    """
    s = answer.strip()
    if len(s) > MAX_ANSWER_CHARS:
        return s
    s = _CONTROL.sub(" ", s).strip()
    for _ in range(4):
        nxt = _normalize_once(s)
        if nxt == s:
            break
        s = nxt
    return s


def _normalize_once(s: str) -> str:
    s = re.sub(r",\\!\s*", ",", s)  # 11,\! 111 is one number
    s = s.strip("$").strip()
    s = re.sub(r"^\\\[|\\\]$|^\\\(|\\\)$", "", s).strip()
    s = s.rstrip(".").strip()
    time = _TIME.match(s)
    if time:  # 4:30 p.m. → 16:30 (a time, not the ratio 4:30)
        hour = int(time.group(1)) % 12 + (12 if time.group(3).lower() == "p" else 0)
        return f"{hour}:{time.group(2)}"
    for old, new in (
        ("{,}", ","),
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\displaystyle", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\$", ""),
    ):
        s = s.replace(old, new)
    s = _PERCENT_WORD.sub("\\\\%", s)
    s = s.replace("%", "\\%").replace("\\\\%", "\\%")
    s = re.sub(r"^\\text\{\s*(.*?)\s*\}$", r"\1", s) if s.count("\\text") == 1 and "\\%" not in s else s
    unit = _TRAILING_TEXT.match(s)
    if unit and not _TIME.match(s):
        s = unit.group(1).strip()
    words = _UNIT_WORDS.match(s)
    if words:
        s = words.group(1)
    s = _LIST_WORD.sub(", ", s)
    s = _TEXT_WRAP.sub(r"\1", s)
    s = re.sub(r"(?<!\\)\\[,;: ]|~", " ", s)  # thin spaces, never the row break "\\\\ "
    s = s.strip()
    mixed = _MIXED.match(s) or _MIXED_FRAC.match(s)
    if mixed:  # 7 3/4 → 31/4 (never the juxtaposition 73/4)
        sign, whole, num, den = mixed.groups()
        if int(den) != 0 and int(num) < int(den):
            value = int(whole) * int(den) + int(num)
            return f"{sign}\\frac{{{value}}}{{{den}}}"
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    s = _COMMAND_SPACE.sub("\\1\x00", s)  # "\\pi r" must not become "\\pir"
    s = re.sub(r",\s+", ",\x01", s)  # "32, 349" is a list; "0,111" is for the grader to read
    s = "".join(s.split()).replace("\x00", " ").replace("\x01", " ")
    s = s.rstrip(".")
    choice = CHOICE.match(s)
    if choice and s.startswith("("):
        return choice.group(1)
    if _NUMBER.match(s) and "e" not in s.lower():
        s = _canonical_decimal(s)
    return s


def _canonical_decimal(s: str) -> str:
    """``+007.50`` → ``7.5``; ``3.0`` → ``3``; ``-0`` → ``0``."""
    sign = "-" if s.startswith("-") else ""
    s = s.lstrip("+-")
    if "." in s:
        whole, frac = s.split(".", 1)
        frac = frac.rstrip("0")
    else:
        whole, frac = s, ""
    whole = whole.lstrip("0") or "0"
    out = whole + ("." + frac if frac else "")
    return "0" if out == "0" else sign + out


def numeric_value(answer: str) -> Fraction | None:
    """The exact rational value of a plain number, ``a/b`` or ``\\frac{a}{b}``; else None."""
    try:
        if _NUMBER.match(answer):
            return Fraction(answer)
        m = _FRAC.match(answer)
        if m:
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return -value if m.group(1) else value
        m = _SLASH.match(answer)
        if m:
            return Fraction(int(m.group(1)), int(m.group(2)))
    except (ValueError, ZeroDivisionError):
        return None
    return None
