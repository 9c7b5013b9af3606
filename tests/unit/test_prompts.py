"""Prompt templates: fixed texts, and ``chat`` through the model's own tokenizer template."""

import pytest

from cascadec.errors import PlanError
from cascadec.runtime.prompts import QWEN_MATH_SYSTEM, chat_tokenizer, check_template, render_prompt

TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def test_fixed_templates_keep_latex_braces():
    assert render_prompt("raw", "\\frac{1}{2}+{x}") == "\\frac{1}{2}+{x}"
    text = render_prompt("qwen-math-cot", "What is {1}?")
    assert text.startswith("<|im_start|>system\n" + QWEN_MATH_SYSTEM)
    assert text.endswith("<|im_start|>user\nWhat is {1}?<|im_end|>\n<|im_start|>assistant\n")


def test_unknown_template_suggests_a_name():
    with pytest.raises(PlanError, match="did you mean 'chat'"):
        check_template("caht")


@pytest.fixture
def tokenizer_dir(tmp_path):
    pytest.importorskip("transformers")
    from cascadec.zoo.tokenizer import build_tokenizer

    with_template = build_tokenizer()
    with_template.chat_template = TEMPLATE
    with_template.save_pretrained(tmp_path / "chat")
    build_tokenizer().save_pretrained(tmp_path / "plain")
    chat_tokenizer.cache_clear()
    return tmp_path


def test_chat_uses_the_tokenizer_template(tokenizer_dir):
    text = render_prompt("chat", "1+2=", str(tokenizer_dir / "chat"))
    assert text == f"<system>{QWEN_MATH_SYSTEM}</system><user>1+2=</user><assistant>"


def test_chat_without_a_template_is_a_plan_error(tokenizer_dir):
    with pytest.raises(PlanError, match="has no chat template"):
        render_prompt("chat", "1+2=", str(tokenizer_dir / "plain"))


def test_chat_with_a_missing_tokenizer_is_a_plan_error(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(PlanError, match="cannot load the tokenizer"):
        render_prompt("chat", "1+2=", str(tmp_path / "nowhere"))
