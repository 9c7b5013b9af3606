"""Answer extraction: last box wins, nested braces, fbox, GSM8K ####, truncation, normalisation."""

from fractions import Fraction

import pytest

from cascadec.runtime.answers import extract_answer, gold_answer, last_boxed, normalize, numeric_value
from cascadec.runtime.prompts import render_prompt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{4}", "4"),
        ("first \\boxed{3} then \\boxed{5}", "5"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\sqrt{\\frac{a}{b}}} done", "\\sqrt{\\frac{a}{b}}"),
        ("\\fbox{7}", "7"),
        ("\\boxed{1} and \\fbox{2}", "2"),
        ("\\boxed 5 is it", "5"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("no box here", None),
        ("\\boxed{12", None),  # truncated mid-box: half an answer must not vote
        ("\\boxed{3} then \\boxed{4", "3"),  # an unclosed last box falls back to the one before
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
        ("#### 1,000", "1000"),
        ("The answer is $\\boxed{ 7.50 }$.", "7.5"),
        ("\\boxed{\\dfrac{3}{4}}", "\\frac{3}{4}"),
        ("\\boxed{\\text{(B)}}", "B"),
        ("\\boxed{90^\\circ}", "90"),
        ("\\boxed{\\left( 1, 2 \\right)}", "(1, 2)"),
        ("\\boxed{-0}", "0"),
        ("\\boxed{}", None),
        ("", None),
        (None, None),
        ("nothing at all", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_boxed_beats_gsm8k_marker():
    assert extract_answer("#### 3\n so \\boxed{4}") == "4"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("42", "42"),
        (42, "42"),
        ("Janet has 3 ducks.\n#### 18", "18"),
        ("We find $x = 2$, so the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        (None, None),
        (float("nan"), None),
        ("  ", None),
    ],
)
def test_gold_answer_layouts(cell, expected):
    assert gold_answer(cell) == expected


def test_normalize_keeps_symbols():
    assert normalize(" x + 1 ") == "x+1"
    assert normalize("$3.0$") == "3"
    assert normalize("1,234,567") == "1234567"
    assert normalize("1,2") == "1,2"  # a tuple, not a thousands separator
    assert normalize("\\pi  r^2") == "\\pi r^2"  # a command keeps its separating space
    assert normalize("2 \\cdot x") == "2\\cdot x"


def test_numeric_value():
    assert numeric_value("7.5") == Fraction(15, 2)
    assert numeric_value("\\frac{15}{2}") == Fraction(15, 2)
    assert numeric_value("-\\frac{1}{3}") == Fraction(-1, 3)
    assert numeric_value("15/2") == Fraction(15, 2)
    assert numeric_value("x") is None
    assert numeric_value("1/0") is None


def test_prompt_templates():
    qwen = render_prompt("qwen-math-cot", "What is {x}?")
    assert qwen == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nWhat is {x}?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_prompt("raw", "12+7=") == "12+7="
    from cascadec.errors import PlanError

    with pytest.raises(PlanError, match="did you mean 'raw'"):
        render_prompt("rawr", "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # several boxes: one answer when list words join them in one sentence
        ("so \\boxed{(2,2)} and \\boxed{(6,2)} are the solutions", "(2,2), (6,2)"),
        ("$x = \\boxed{1}$ or $x = \\boxed{-3}$", "1, -3"),
        ("First \\boxed{3} pairs.\nSo the answer is \\boxed{6}.", "6"),  # a worked step's box is ignored
        ("We get \\boxed{3}. Then we double it: \\boxed{6}", "6"),
        ("\\boxed{1} no no no \\boxed{2}", "2"),
        ("\\boxed{5}, i.e. \\boxed{5}", "5"),
        # prose endings
        ("The answer is 6.", "6"),
        ("The answer is: 1", "1"),
        ("Final Answer: The final answer is $34$. I hope it is correct.", "34"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("\\boxed{200} then \\boxed{255}. Final Answer: The final answer is $10,455$.", "10455"),
        ("blah\n#### 6", "6"),
        ("so the result is\n\\[\n 9 \n\\]", "9"),
        ("So the total cost is $\\$18$.", "18"),  # \\$ is a dollar sign, not a delimiter
        ("so 9 * 2 = $18 per day.\nHope this helps!", "18"),  # trailing prose lines are skipped
        ("Answer $ \n 9 \n $", None),  # inline math does not span lines (as math-verify)
        # values kept, noise removed
        ("\\boxed{7 3/4}", "\\frac{31}{4}"),
        ("\\boxed{4 4/9}", "\\frac{40}{9}"),
        ("\\boxed{7\\frac{3}{4}}", "\\frac{31}{4}"),
        ("\\boxed{0,111}", "0,111"),
        ("\\boxed{32, 349}", "32, 349"),
        ("\\boxed{32,\\! 349}", "32349"),
        ("\\boxed{28 percent}", "28\\%"),
        ("\\boxed{10\\%}", "10\\%"),
        ("\\boxed{10\\text{ units}}", "10"),
        ("\\boxed{5 \\text{ cm}^2}", "5"),
        ("\\boxed{2 \\text{ and } 3}", "2, 3"),
        ("\\boxed{19, 46, and 82}", "19, 46, 82"),
        ("\\boxed{4:30 \\text{ p.m.}}", "16:30"),
        ("\\boxed{\\text{Monday}}", "Monday"),
        ("\\boxed{\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ],
)
def test_extract_answer_issue_11(text, expected):
    assert extract_answer(text) == expected


def test_read_answer_bare_or_worked():
    from cascadec.runtime.answers import read_answer

    assert read_answer("(x-2)(x+2)") == "(x-2)(x+2)"  # bare: not its last number
    assert read_answer("10\\text{ units}") == "10"
    assert read_answer("$1$ and $2$ and $3$") == "1, 2, 3"
    assert read_answer("so she makes 9 * 2 = $18 every day.") == "18"
    assert read_answer("  ") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        # RouteLLM's Mixtral responses on GSM8K (lm-sys/RouteLLM gsm8k_responses.csv, rows 1215, 1236,
        # 184): a number then words, read as lm-evaluation-harness's strict filter reads them
        ("so Tim was off by 36 red jelly beans.\n\n#### 36 red jelly beans", "36"),
        ("36 + 12 x 4 = 84 grapes.\n#### 84 (corrected)\n\n", "84"),
        ("#### 25% more likely", "25%"),
        ("#### 0.5", "0.5"),  # a decimal stays a decimal (gold 5: wrong, as it should be)
        ("#### 5/2", "5/2"),
        ("#### x = 5", "x = 5"),  # more than words after the number: kept whole
        ("#### 3 + 4", "3 + 4"),
    ],
)
def test_gsm8k_answer_keeps_the_number_before_words(text, expected):
    from cascadec.runtime.answers import gsm8k_answer

    assert gsm8k_answer(text) == expected


def test_gsm8k_format_grades_a_number_with_units_right():
    from cascadec.core.answer_format import AnswerFormat
    from cascadec.runtime.equivalence import Equivalence

    answer = extract_answer("off by 36.\n#### 36 red jelly beans", AnswerFormat.GSM8K)
    assert Equivalence("math").grade("36", answer) is True


@pytest.mark.parametrize(
    "text, expected",
    [
        # Faithful-CoT's gpt-4 GSM8K completions (veronica320/Faithful-COT): money is not a math span
        ("She pays $204 (donuts) + $160 (cookies) + $330 (cheesecakes) = $694. The answer is $694.", "694"),
        ("So the total is $20,000 and $30,000, i.e. $50,000", "50000"),
        ("so $x = 5$", "x=5"),  # a real span still reads
    ],
)
def test_dollars_before_a_digit_are_money_not_math(text, expected):
    assert extract_answer(text) == expected
