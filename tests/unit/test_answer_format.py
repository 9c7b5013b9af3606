"""Answer formats are part of the compiled strategy: spec ``defaults.answer`` → plan → runtime."""

from __future__ import annotations

import pandas as pd
import pytest
from compiler_specs import CTX, SAMPLED, spec
from pydantic import ValidationError

from cascadec.api import execute, prepare
from cascadec.compiler import compile_marker
from cascadec.compiler.pipeline import compile_strategy
from cascadec.core.answer_format import AnswerFormat, default_answer_format
from cascadec.runtime.answers import extract_answer
from cascadec.runtime.backends.replay import ReplayBackend
from cascadec.runtime.equivalence import Equivalence
from cascadec.runtime.testing import make_plan, strategy, tier


def compiled(**defaults):
    s = spec({"mv": {"model": "1.5B", **SAMPLED}}, defaults=defaults)
    return compile_strategy(s, CTX)


def test_default_follows_the_prompt():
    assert default_answer_format("qwen-math-cot") is AnswerFormat.BOXED_OR_FINAL_LINE
    assert default_answer_format("raw") is AnswerFormat.BOXED
    assert default_answer_format("someone-elses") is AnswerFormat.BOXED_OR_FINAL_LINE
    plan, _ = compile_marker("mv_1.5B_k4_t0.7")
    assert plan.strategies[0].answer is AnswerFormat.BOXED_OR_FINAL_LINE


@pytest.mark.parametrize("fmt", list(AnswerFormat))
def test_spec_answer_reaches_the_plan(fmt):
    strategy_ = compiled(answer=fmt.value)[0]
    assert strategy_.answer is fmt
    assert strategy_.model_dump(mode="json")["answer"] == fmt.value


def test_unknown_answer_format_is_rejected():
    with pytest.raises(ValidationError, match="boxed_or_final_line"):
        spec({"mv": {"model": "1.5B", **SAMPLED}}, defaults={"answer": "last_number"})


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("so 3+4 = 7. The answer is 7.", AnswerFormat.BOXED, None),
        ("so 3+4 = 7. The answer is 7.", AnswerFormat.BOXED_OR_FINAL_LINE, "7"),
        ("3+4 = 7\n#### 7", AnswerFormat.GSM8K, "7"),
        ("3+4 = 7, so 7 apples", AnswerFormat.GSM8K, "7"),
        ("The correct option is (C).", AnswerFormat.CHOICE, "C"),
        ("\\boxed{\\text{(D)}}", AnswerFormat.CHOICE, "D"),
        ("I am not sure.", AnswerFormat.BOXED_OR_FINAL_LINE, None),
    ],
)
def test_formats_read_different_endings(text, fmt, expected):
    assert extract_answer(text, fmt) == expected


def test_runtime_reads_answers_with_the_plans_format_and_silent_samples_never_vote():
    texts = ["The answer is 5.", "The answer is 5.", "\\boxed{6}", "I give up."]
    bank = pd.DataFrame(
        {
            "model": "S",
            "problem_id": "p",
            "sample_index": range(4),
            "text": texts,
            "num_tokens": 5,
            "finish_reason": "stop",
            "logprobs": None,
        }
    )
    problems = pd.DataFrame({"id": ["p"], "problem": ["?"], "answer": ["5"]})
    out = {}
    for fmt in (AnswerFormat.BOXED, AnswerFormat.BOXED_OR_FINAL_LINE):
        plan = make_plan([strategy("s", [tier("S", 4)], answer=fmt)], {"S": 1.0})
        res, samples, _, _ = execute(
            prepare(plan, problems), ReplayBackend(bank), equivalence=Equivalence("exact")
        )
        out[fmt] = (res.iloc[0], [a if isinstance(a, str) else None for a in samples["answer"]])
    boxed_row, boxed_answers = out[AnswerFormat.BOXED]
    assert boxed_answers == [None, None, "6", None]
    assert boxed_row["final_answer"] == "6" and not boxed_row["correct"]
    prose_row, prose_answers = out[AnswerFormat.BOXED_OR_FINAL_LINE]
    assert prose_answers == ["5", "5", "6", None]
    assert prose_row["final_answer"] == "5" and prose_row["correct"]
