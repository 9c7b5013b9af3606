"""Answer extraction: what final answer a completion gives, as a short normalised string.

What counts as "the answer" is the strategy's :class:`AnswerFormat` (declared in the spec, kept
in the plan). The rules, in the order each format tries them:

- **the final box run**: the last ``\\boxed{...}``/``\\fbox{...}`` (braces matched) together with
  the boxes right before it that are joined to it only by list words (``,``, ``and``, ``or``,
  ``$``, ``\\quad``…): ``\\boxed{(2,2)} and \\boxed{(6,2)}`` answers ``(2,2), (6,2)``, while the
  intermediate boxes of a worked solution, separated from the last one by prose, are ignored;
- **a prose ending**: "The (final) answer is X", "Final Answer: The final answer is $X$. I hope
  it is correct." (Minerva), "The answer is: X", "Answer: X", GSM8K's ``#### X``;
- **the final line**: the last ``$...$``/``\\(...\\)``/``\\[...\\]`` of the last line, else its
  last number;
- **a choice letter** (``choice``): ``(B)``, ``B.``, ``\\text{(B)}`` → ``B``.

Normalisation only removes spelling noise so that equal answers usually become equal strings
(spaces, ``$``, ``\\left``, ``\\dfrac``, thousands separators, units in ``\\text{}``, degrees);
it never changes a value: ``7 3/4`` is the mixed number ``\\frac{31}{4}``, ``32, 349`` stays a
list, ``0,111`` stays for the grader to read (:mod:`cascadec.runtime.normalize`, re-exported
here). Deciding that two answers are the same is :mod:`cascadec.runtime.equivalence`'s job.
"""

from __future__ import annotations

import re

from cascadec.core.answer_format import AnswerFormat
from cascadec.runtime.normalize import CHOICE, MAX_ANSWER_CHARS, normalize, numeric_value

__all__ = [  # normalisation is re-exported: callers read answers from one module
    "MAX_ANSWER_CHARS",
    "choice_answer",
    "extract_answer",
    "final_box_run",
    "final_line_answer",
    "gold_answer",
    "gsm8k_answer",
    "last_boxed",
    "looks_bare",
    "normalize",
    "numeric_value",
    "prose_answer",
    "raw_answer",
    "read_answer",
]

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_SENTENCE_END = re.compile(r"\n|[.!?](?:\s+|\$\s*)[A-Z]|[.!?]\s*$")
_LIST_JOIN = re.compile(r"\band\b|\bor\b|[,;&]|\\quad|^[\s$]*$")
_ONLY_LIST_WORDS = re.compile(r"^[\s,;.]*(?:(?:and|or|,|;)[\s,;]*)*$")
_GSM8K = re.compile(r"####\s*([^\n]+)")
_PROSE = re.compile(
    r"(?:final answer\s*(?:is|:)|the answer is|answer\s*:)\s*:?\s*(?P<rest>[^\n]*)",
    re.IGNORECASE,
)
_MATH_SPAN = re.compile(
    r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$(?!\d)|\\\((.+?)\\\)|\\\[(.+?)\\\]",
    re.DOTALL,
)  # ``\$`` is a dollar sign, not a delimiter; so are "$204 (donuts) + $160" (as in Pandoc: an inline
# span never closes right before a digit)
_LEADING_NUMBER = re.compile(  # a number, then only words and punctuation: units, remarks
    r"^\$?\s*(?P<number>-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?)\s*(?P<percent>%?)"
    r"(?=\s+[A-Za-z(]|\s*$)(?:\s+[A-Za-z(][A-Za-z()\s.,'!-]*)?$"
)
_NUMBER_IN_TEXT = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")
_CHOICE_IN_TEXT = re.compile(r"(?:^|[\s(\[{*])\(?([A-J])\)?(?=[\s.,:;)\]}*]|$)")


# --- boxes ---------------------------------------------------------------------------------
def _boxes(text: str) -> list[tuple[int, int, str]]:
    """Every complete box as (start, end, content); an unclosed box (truncated sample) is skipped."""
    found = []
    i = 0
    while True:
        starts = [p for p in (text.find(c, i) for c in _BOX_COMMANDS) if p >= 0]
        if not starts:
            return found
        start = min(starts)
        cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
        j = start + len(cmd)
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            end = _brace_end(text, j)
            if end is None:
                i = j + 1
                continue
            found.append((start, end + 1, text[j + 1 : end]))
            i = end + 1
        elif j > start + len(cmd) and j < len(text):  # "\boxed 5"
            m = re.match(r"[^\s$]+", text[j:])
            if m:
                found.append((start, j + m.end(), m.group(0)))
            i = j + 1
        else:
            i = start + len(cmd)


def _brace_end(text: str, open_at: int) -> int | None:
    """Index of the brace closing the group opened at ``open_at`` (``\\{``/``\\}`` are text)."""
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
                return j
        j += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}``/``\\fbox{...}`` (nested braces kept), or None."""
    boxes = _boxes(text)
    return boxes[-1][2] if boxes else None


def final_box_run(text: str) -> str | None:
    """The last box and the boxes of the same sentence before it, as one comma-separated answer.

    Boxes are one answer when a list word (``and``, ``or``, ``,``, ``;``) or nothing but space
    joins them within a sentence: ``\\boxed{(2,2)} and \\boxed{(6,2)}``. A new line or a
    sentence end (``. T``) between two boxes separates a worked step from the final answer.
    """
    boxes = _boxes(text)
    if not boxes:
        return None
    run = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : run[0][0]]
        if _SENTENCE_END.search(gap) or len(gap) > 80 or not _LIST_JOIN.search(gap):
            break
        run.insert(0, box)
    contents = [c.strip() for _, _, c in run if c.strip()]
    if not contents:
        return ""
    if len(contents) > 1 and len(set(contents)) == 1:
        return contents[0]  # the same box twice ("so \boxed{5}, i.e. \boxed{5}")
    return ", ".join(contents)


# --- prose and final line ------------------------------------------------------------------
def gsm8k_answer(text: str) -> str | None:
    """The answer after the last ``####``, as GSM8K writes its solutions. A number followed by
    words only (``#### 36 red jelly beans``, ``#### 84 (corrected)``) is that number, as
    lm-evaluation-harness's strict GSM8K filter reads it (``#### (-?[0-9.,]+)``); a fraction or
    a percentage keeps its slash or sign, and anything with more math is kept whole."""
    found = _GSM8K.findall(text)
    if not found:
        return None
    answer = found[-1].strip()
    lead = _LEADING_NUMBER.match(answer)
    return lead.group("number") + lead.group("percent") if lead else answer


def prose_answer(text: str) -> str | None:
    """The answer of the last "the answer is X" / "Final Answer: ... $X$" / ``#### X`` ending."""
    found = _prose(text)
    return found[1] if found else None


def _prose(text: str) -> tuple[int, str] | None:
    """(position, answer) of the last prose ending."""
    best: tuple[int, str] | None = None
    for m in _PROSE.finditer(text):
        best = (m.start(), m.group("rest"))
    g = list(_GSM8K.finditer(text))
    if g and (best is None or g[-1].start() > best[0]):
        best = (g[-1].start(), g[-1].group(1))
    if best is None:
        return None
    pos, rest = best[0], best[1].strip()
    rest = re.sub(r"^(?:the\s+)?final answer is\s*:?\s*", "", rest, flags=re.IGNORECASE)
    boxed = final_box_run(rest)
    if boxed:
        return pos, boxed
    span = _MATH_SPAN.search(rest)
    if span and span.start() <= 2:
        return pos, next(g for g in span.groups() if g is not None)
    # up to the end of the sentence: a period followed by a space, or the end of the line
    rest = re.split(r"\.\s|\.$|\s+(?:I hope|because|since)\b", rest, maxsplit=1)[0]
    rest = rest.strip().rstrip(".").strip()
    if _is_prose(rest):  # "The largest $n$ is 34": the sentence's last math or number
        rest = _last_atom(rest) or ""
    return (pos, rest) if rest else None


def _is_prose(text: str) -> bool:
    """Two English words in a row outside math and LaTeX commands."""
    plain = _MATH_SPAN.sub(" ", text)
    plain = re.sub(r"\\[a-zA-Z]+\s*(\{[^{}]*\})?", " ", plain)
    return bool(re.search(r"[A-Za-z]{2,}[\s,.:;]+[A-Za-z]{2,}", plain))


def _last_atom(text: str) -> str | None:
    """The later of the last math span and the last number outside math spans."""
    spans = list(_MATH_SPAN.finditer(text))
    plain = _MATH_SPAN.sub(lambda m: " " * len(m.group(0)), text)
    numbers = list(_NUMBER_IN_TEXT.finditer(plain))
    span_end = spans[-1].end() if spans else -1
    if numbers and numbers[-1].start() > span_end:
        return numbers[-1].group(0).strip().rstrip(",")
    if spans:
        return next(g for g in spans[-1].groups() if g is not None)
    return None


def final_line_answer(text: str) -> str | None:
    """The last math span or number (whichever comes last) of the last line that has one.

    Prose lines after it ("Hope this helps!") are skipped, at most 3.
    """
    text = text.rstrip()
    for _ in range(4):
        if not text.strip():
            return None
        start = text.rfind("\n") + 1
        spans = [m for m in _MATH_SPAN.finditer(text) if m.end() > start]
        if spans and spans[-1].start() < start and spans[-1].group(0)[:2] in ("$$", "\\["):
            start = spans[-1].start()  # a display block ending the text: "\\[ \n 9 \n \\]"
        found = _last_atom(text[start:])
        if found is not None or not re.search(r"[A-Za-z]{2}", text[start:]):
            return found  # a bare delimiter line ("$", "\\)") ends an unread block: no answer
        text = text[:start].rstrip()
    return None


def choice_answer(text: str) -> str | None:
    """A multiple-choice letter: boxed, after "answer is", or the last standalone one."""
    for candidate in (final_box_run(text), prose_answer(text)):
        if candidate:
            letter = _as_choice(normalize(candidate))
            if letter:
                return letter
    tail = text.strip().splitlines()[-1] if text.strip() else ""
    found = _CHOICE_IN_TEXT.findall(tail)
    return found[-1] if found else None


def _as_choice(answer: str) -> str | None:
    m = CHOICE.match(answer.replace("\\text{", "").replace("}", "").strip())
    return m.group(1) if m else None


# --- public entry points -------------------------------------------------------------------
def raw_answer(text: str, fmt: AnswerFormat = AnswerFormat.BOXED_OR_FINAL_LINE) -> str | None:
    """The answer as written (not normalised), by the rules of ``fmt``."""
    fmt = AnswerFormat(fmt)
    if fmt is AnswerFormat.CHOICE:
        return choice_answer(text)
    if fmt is AnswerFormat.GSM8K:
        rules = (gsm8k_answer, prose_answer, final_box_run, _last_number)
    elif fmt is AnswerFormat.BOXED:
        rules = (final_box_run,)
    else:
        return _box_or_prose(text) or final_line_answer(text)
    for rule in rules:
        found = rule(text)
        if found is not None and found.strip():
            return found
    return None


def _box_or_prose(text: str) -> str | None:
    """The final box run, unless a prose ending ("Final Answer: ...") comes after it."""
    boxes = _boxes(text)
    prose = _prose(text)
    if prose and (not boxes or prose[0] > boxes[-1][1]):
        return prose[1]
    return final_box_run(text) if boxes else None


def _last_number(text: str) -> str | None:
    numbers = _NUMBER_IN_TEXT.findall(text)
    return numbers[-1].strip().rstrip(",") if numbers else None


def extract_answer(text: str | None, fmt: AnswerFormat = AnswerFormat.BOXED_OR_FINAL_LINE) -> str | None:
    """Normalised final answer of a completion or a gold solution, or None when it gives none."""
    if not text:
        return None
    raw = raw_answer(text, fmt)
    if raw is None or len(raw) > MAX_ANSWER_CHARS:
        return None
    norm = normalize(raw)
    if fmt is AnswerFormat.CHOICE:
        return _as_choice(norm) or norm or None
    return norm or None


def looks_bare(text: str) -> bool:
    """True for a bare answer (``10\\text{ units}``, ``(x-2)(x+2)``), False for a worked text."""
    if "\n" in text.strip() or len(text) > 200 or any(c in text for c in _BOX_COMMANDS) or "####" in text:
        return False
    if _PROSE.search(text) or _is_prose(text):
        return False
    has_math = _MATH_SPAN.search(text) is not None
    outside = re.sub(r"\\[a-zA-Z]+\s*(\{[^{}]*\})?", " ", _MATH_SPAN.sub(" ", text))
    return not (has_math and re.search(r"[A-Za-z]{3,}", outside))


def read_answer(text: str | None, fmt: AnswerFormat = AnswerFormat.BOXED_OR_FINAL_LINE) -> str | None:
    """The answer of a bare answer or of a worked text: what grading a free-form cell needs."""
    if text is None or not str(text).strip():
        return None
    text = str(text)
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN.finditer(text)]
    if len(spans) > 1 and _ONLY_LIST_WORDS.match(_MATH_SPAN.sub(",", text)):
        return normalize(", ".join(spans)) or None  # "$1$ and $2$ and $3$"
    if looks_bare(text):
        return normalize(text) or None
    return extract_answer(text, fmt)


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
