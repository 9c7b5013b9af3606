"""The zoo task: deterministic sampling, separate train/test streams, targets the runtime can grade."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

from cascadec.zoo.task import (
    ALPHABET,
    BOX_OPEN,
    LADDER,
    TEST_MIX,
    TRAIN_MIX,
    longest_text,
    parse_operands,
    sample_problem_objects,
    sample_problems,
    target_text,
    training_stream,
)


def test_sampling_is_deterministic_per_seed():
    assert sample_problems(50, seed=7) == sample_problems(50, seed=7)
    assert sample_problems(50, seed=7) != sample_problems(50, seed=8)


def test_records_have_the_documented_fields():
    rows = sample_problems(20, seed=3)
    assert [r["id"] for r in rows] == [f"zoo-3-{i}" for i in range(20)]
    for row in rows:
        assert set(row) == {"id", "problem", "answer", "difficulty", "bucket"}
        assert isinstance(row["answer"], str) and row["answer"].isdigit()
        assert 0.0 <= row["difficulty"] <= 1.0
        assert row["bucket"] in {b.level for b in LADDER}


def test_answer_is_the_sum_and_prompt_matches_the_bucket():
    for p in sample_problem_objects(500, seed=1):
        operands = parse_operands(p.problem)
        assert operands == p.operands
        assert p.answer == str(sum(operands))
        bucket = LADDER[p.bucket]
        assert len(operands) == bucket.operands
        digits = [len(str(v)) for v in operands]
        assert max(digits) == bucket.max_digits
        assert min(digits) >= bucket.min_digits


def test_target_is_reversed_partial_sums_then_the_box():
    problem = {"problem": "485+37+96="}
    assert target_text(problem) == "225;816;\\boxed{618}"
    assert target_text({"problem": "7+5="}) == "21;\\boxed{12}"


def test_last_box_of_the_target_is_the_gold_answer():
    for p in sample_problem_objects(300, seed=2):
        boxed = re.findall(r"\\boxed\{([^{}]*)\}", target_text(p))
        assert boxed[-1] == p.answer


def test_every_character_is_in_the_alphabet_and_sequences_stay_short():
    for p in sample_problem_objects(300, seed=4):
        text = p.problem + target_text(p)
        assert set(text) <= set(ALPHABET)
    prompt, target = longest_text()
    assert len(prompt) + len(target) <= 64
    assert target.endswith(BOX_OPEN + str(sum(parse_operands(prompt))) + "}")


def test_difficulty_follows_the_ladder():
    problems = sample_problem_objects(600, seed=5)
    for low, high in itertools.pairwise(LADDER):
        worst_low = max(p.difficulty for p in problems if p.bucket == low.level)
        best_high = min(p.difficulty for p in problems if p.bucket == high.level)
        assert worst_low <= best_high


def test_training_stream_never_replays_the_test_stream():
    """Same seed, different namespace: the hard problems of the two streams do not coincide."""
    test_prompts = [p.problem for p in sample_problem_objects(300, seed=0) if p.bucket >= 3]
    stream = training_stream(seed=0)
    train_prompts = {next(stream)[0] for _ in range(3000)}
    assert not set(test_prompts) & train_prompts


def test_mixes_cover_every_bucket():
    assert len(TEST_MIX) == len(TRAIN_MIX) == len(LADDER)
    assert abs(sum(TEST_MIX) - 1) < 1e-9
    assert all(w > 0 for w in TEST_MIX + TRAIN_MIX)


def test_importing_the_zoo_cli_does_not_import_torch_or_vllm():
    code = "import sys, cascadec.zoo.cli; assert not {'torch', 'vllm', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
