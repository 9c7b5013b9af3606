"""Answer extraction and normalisation: what a sample's final answer is, as a short string.

A sample votes with the content of its *last* ``\\boxed{...}`` (or ``\\fbox{...}``), braces
matched so ``\\boxed{\\frac{1}{2}}`` keeps its inner braces; without one, GSM8K's
``#### 42`` line counts. Normalisation only removes spelling noise (spaces, ``$``,
``\\left``, ``\\dfrac``, thousands separators, a trailing ``.``); deciding that ``0.5`` and
``\\frac{1}{2}`` are the same answer is the job of :mod:`cascadec.runtime.equivalence`.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_GSM8K = re.compile(r"####\s*([^\n]+)")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH = re.compile(r"^(-?\d+)/(\d+)$")
_COMMAND_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``/``\\fbox{...}`` (nested braces kept), or None.

    ``\\boxed 5`` (no braces, seen in some model outputs) yields ``5``. An unclosed box at
    the end of a truncated sample yields None: half an answer must not vote.
    """
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    while start >= 0:
        cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
        i = start + len(cmd)
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            content = _braced(text, i)
            if content is not None:
                return content
        elif i > start + len(cmd) and i < len(text):  # "\boxed 5"
            m = re.match(r"[^\s$]+", text[i:])
            if m:
                return m.group(0)
        # malformed box: look at the one before it
        start = max(text.rfind(c, 0, start) for c in _BOX_COMMANDS)
    return None


def _braced(text: str, open_at: int) -> str | None:
    """The text inside the brace group opening at ``open_at`` (``\\{`` and ``\\}`` are text)."""
    depth, j = 0, open_at
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : j]
        j += 1
    return None


def gsm8k_answer(text: str) -> str | None:
    """The answer after the last ``####`` line, as GSM8K writes its solutions."""
    found = _GSM8K.findall(text)
    return found[-1].strip() if found else None


def extract_answer(text: str | None) -> str | None:
    """Normalised final answer of a model output or a gold solution, or None when there is none."""
    if not text:
        return None
    raw = last_boxed(text)
    if raw is None:
        raw = gsm8k_answer(text)
    if raw is None:
        return None
    norm = normalize(raw)
    return norm or None


def gold_answer(value: object) -> str | None:
    """A gold answer cell: a bare answer (``42``), a GSM8K solution, or a MATH solution."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    if any(cmd in text for cmd in _BOX_COMMANDS) or "####" in text:
        return extract_answer(text)
    return normalize(text) or None


def normalize(answer: str) -> str:
    """Remove spelling noise so that the exact-match fast path catches most equal answers."""
    s = answer.strip()
    s = s.strip("$").strip()
    s = _TEXT_WRAP.sub(r"\1", s)
    for old, new in (
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\ ", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\$", ""),
    ):
        s = s.replace(old, new)
    s = _COMMAND_SPACE.sub("\\1\x00", s)  # "\\pi r" must not become "\\pir"
    s = "".join(s.split()).replace("\x00", " ")
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    s = s.rstrip(".")
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
