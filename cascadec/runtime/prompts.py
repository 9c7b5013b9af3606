"""Prompt templates by name: a plan says ``prompt: qwen-math-cot`` and the runtime renders text.

Templates render to plain text, so every backend (offline, HTTP completions, replay) sees the
same prompt and the prompt is part of what a result records. ``qwen-math-cot`` is the
Qwen2.5-Math evaluation prompt in the Qwen chat format; ``raw`` passes the problem through
verbatim (the zoo models were trained on ``a+b=`` prompts and know no chat format).
"""

from __future__ import annotations

import difflib

from cascadec.errors import PlanError

QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

TEMPLATES: dict[str, str] = {
    "qwen-math-cot": (
        "<|im_start|>system\n" + QWEN_MATH_SYSTEM + "<|im_end|>\n"
        "<|im_start|>user\n{problem}<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "raw": "{problem}",
}


def check_template(name: str) -> None:
    """Raise a PlanError naming the known templates when ``name`` is not one of them."""
    if name not in TEMPLATES:
        close = difflib.get_close_matches(name, TEMPLATES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PlanError(f"unknown prompt template {name!r} (known: {', '.join(sorted(TEMPLATES))}){hint}")


def render(name: str, problem: str) -> str:
    check_template(name)
    # str.replace, not str.format: problems are full of LaTeX braces
    return TEMPLATES[name].replace("{problem}", problem)
