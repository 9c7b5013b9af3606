"""Answer formats: how a strategy reads the final answer out of a completion.

The format is part of the compiled strategy (spec ``defaults.answer`` → plan ``answer``), so the
rule that decides what a sample votes for is visible in the plan, not hidden in the runtime:

- ``boxed``: the final ``\\boxed{...}`` run only (the Qwen2.5-Math / MATH convention);
- ``boxed_or_final_line``: a box first, then a prose ending ("The answer is 6.",
  "Final Answer: The final answer is $34$.", ``#### 6``), then the last math or number of the
  final line;
- ``gsm8k``: ``#### n`` first, then "The answer is n", then a box, then the last number;
- ``choice``: a multiple-choice letter ``A``–``J`` (boxed, after "answer is", or alone at the end).

Without ``answer:``, the prompt decides: the prompts that ask for ``\\boxed{}`` from a chat model
read ``boxed_or_final_line`` (chat models sometimes end in prose); ``raw`` (the zoo models,
trained to box) reads ``boxed``.
"""

from __future__ import annotations

from enum import StrEnum


class AnswerFormat(StrEnum):
    BOXED = "boxed"
    BOXED_OR_FINAL_LINE = "boxed_or_final_line"
    GSM8K = "gsm8k"
    CHOICE = "choice"


DEFAULT_ANSWER_FORMAT = AnswerFormat.BOXED_OR_FINAL_LINE
PROMPT_ANSWER_FORMAT: dict[str, AnswerFormat] = {
    "qwen-math-cot": AnswerFormat.BOXED_OR_FINAL_LINE,
    "chat": AnswerFormat.BOXED_OR_FINAL_LINE,
    "raw": AnswerFormat.BOXED,
}


def default_answer_format(prompt: str) -> AnswerFormat:
    """The answer format a prompt implies when the spec does not name one."""
    return PROMPT_ANSWER_FORMAT.get(prompt, DEFAULT_ANSWER_FORMAT)
