"""Prompt templates by name: a plan says ``prompt: qwen-math-cot`` and the runtime renders text.

Templates render to plain text, so every backend (offline, HTTP completions, replay) sees the
same prompt and the prompt is part of what a result records. ``qwen-math-cot`` is the
Qwen2.5-Math evaluation prompt in the Qwen chat format; ``raw`` passes the problem through
verbatim (the zoo models were trained on ``a+b=`` prompts and know no chat format); ``chat``
renders the same system + user messages with the model's own tokenizer chat template (so one
plan can mix model families), which needs ``transformers`` and the tokenizer on this machine.
"""

from __future__ import annotations

import difflib
import functools

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
CHAT = "chat"
KNOWN = (*TEMPLATES, CHAT)


def check_template(name: str) -> None:
    """Raise a PlanError naming the known templates when ``name`` is not one of them."""
    if name not in KNOWN:
        close = difflib.get_close_matches(name, KNOWN, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PlanError(f"unknown prompt template {name!r} (known: {', '.join(sorted(KNOWN))}){hint}")


def render_prompt(name: str, problem: str, tokenizer_path: str | None = None) -> str:
    """The prompt text; ``chat`` needs ``tokenizer_path`` (the model's folder or hub id)."""
    check_template(name)
    if name == CHAT:
        if tokenizer_path is None:
            raise PlanError("prompt 'chat' needs the model's tokenizer")
        messages = [{"role": "system", "content": QWEN_MATH_SYSTEM}, {"role": "user", "content": problem}]
        return chat_tokenizer(tokenizer_path).apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
    # str.replace, not str.format: problems are full of LaTeX braces
    return TEMPLATES[name].replace("{problem}", problem)


@functools.lru_cache(maxsize=16)
def chat_tokenizer(path: str):
    """The tokenizer at ``path``, loaded once; a PlanError when it is missing or has no template."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise PlanError("prompt 'chat' needs transformers: pip install 'cascadec[cpu]' or '[gpu]'") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise PlanError(f"prompt 'chat': cannot load the tokenizer of {path}: {exc}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise PlanError(
            f"prompt 'chat': the tokenizer of {path} has no chat template; use prompt qwen-math-cot or raw"
        )
    return tokenizer
