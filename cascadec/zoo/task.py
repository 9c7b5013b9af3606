"""The zoo's generated arithmetic task: multi-operand addition with a difficulty ladder.

The prompt is the bare sum (``485+37+96=``); the target is a short worked chain of running
partial sums, each written least-significant digit first, then the answer in ``\\boxed{}``::

    485+37+96=   ->   225;816;\\boxed{618}

Why this shape: writing digits least-significant first makes every output digit depend only
on aligned input digits and the carry visible just before it, so tiny transformers can learn
it; running partial sums split a 3-operand sum into two 2-operand steps. The box makes answer
extraction (last ``\\boxed{...}``) and voting work exactly as on MATH.

Seeds: held-out problems come from ``random.Random(f"test:{seed}")`` and training batches
from ``random.Random(f"train:{seed}")``, two separate namespaces, so no training stream ever
reproduces a test stream. (The easiest buckets are small spaces, e.g. 100 one-digit sums, so
individual easy problems do recur; the harder buckets practically never repeat.)

Pure Python on purpose: sampling problems must not import torch.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

BOX_OPEN = "\\boxed{"
BOX_CLOSE = "}"
STEP_END = ";"
# Every character a prompt or a target can contain: the tokenizer's vocabulary.
ALPHABET = "0123456789+=;\\boxed{}"


@dataclass(frozen=True)
class Bucket:
    """One rung of the ladder: how many operands and how many digits each may have."""

    level: int
    operands: int
    min_digits: int
    max_digits: int


LADDER: tuple[Bucket, ...] = (
    Bucket(0, 2, 1, 1),  # 7+5=
    Bucket(1, 2, 1, 2),  # 48+7=
    Bucket(2, 2, 2, 3),  # 385+47=
    Bucket(3, 2, 3, 4),  # 4785+293=
    Bucket(4, 3, 1, 3),  # 485+37+9=
    Bucket(5, 3, 2, 4),  # 4785+293+61=
)
# Share of held-out problems per bucket; tuned so the small model is strong on the easy
# rungs, unreliable on the hard ones, and the overall ladder spans a useful range.
TEST_MIX: tuple[float, ...] = (0.3, 0.3, 0.1, 0.1, 0.1, 0.1)
# Training over-weights the hard rungs: the easy ones are learned from very few examples.
TRAIN_MIX: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.2, 0.3)


@dataclass(frozen=True)
class ZooProblem:
    """A held-out problem as the runtime sees it: ``problem`` is fed verbatim as the prompt."""

    id: str
    problem: str
    answer: str
    difficulty: float
    bucket: int
    operands: tuple[int, ...]

    def to_record(self) -> dict:
        """The JSONL row: id, problem, answer, difficulty, bucket."""
        row = asdict(self)
        del row["operands"]
        return row


def _random_operand(rng: random.Random, bucket: Bucket, digits: int | None = None) -> int:
    digits = digits if digits is not None else rng.randint(bucket.min_digits, bucket.max_digits)
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def _operands(rng: random.Random, bucket: Bucket) -> tuple[int, ...]:
    """Operands of a bucket; one of them always has the bucket's largest digit count."""
    longest = rng.randrange(bucket.operands)
    return tuple(
        _random_operand(rng, bucket, bucket.max_digits if i == longest else None)
        for i in range(bucket.operands)
    )


def carries(a: int, b: int) -> int:
    """How many column carries the written addition a+b needs (a difficulty signal)."""
    count, carry = 0, 0
    while a or b:
        carry = 1 if a % 10 + b % 10 + carry >= 10 else 0
        count += carry
        a, b = a // 10, b // 10
    return count


def difficulty(bucket: Bucket, operands: tuple[int, ...]) -> float:
    """Ladder position in [0, 1]: the bucket, refined by the share of columns that carry."""
    total, carried, columns = operands[0], 0, 0
    for value in operands[1:]:
        carried += carries(total, value)
        columns += max(len(str(total)), len(str(value)))
        total += value
    within = carried / columns if columns else 0.0
    return round((bucket.level + within) / len(LADDER), 4)


def make_problem(rng: random.Random, bucket: Bucket, problem_id: str) -> ZooProblem:
    ops = _operands(rng, bucket)
    return ZooProblem(
        id=problem_id,
        problem="+".join(str(v) for v in ops) + "=",
        answer=str(sum(ops)),
        difficulty=difficulty(bucket, ops),
        bucket=bucket.level,
        operands=ops,
    )


def _pick_bucket(rng: random.Random, mix: tuple[float, ...]) -> Bucket:
    return rng.choices(LADDER, weights=mix, k=1)[0]


def sample_problem_objects(n: int, seed: int, mix: tuple[float, ...] = TEST_MIX) -> list[ZooProblem]:
    """``n`` held-out problems, deterministic for ``seed`` (test namespace)."""
    rng = random.Random(f"test:{seed}")
    return [make_problem(rng, _pick_bucket(rng, mix), f"zoo-{seed}-{i}") for i in range(n)]


def sample_problems(n: int, seed: int, mix: tuple[float, ...] = TEST_MIX) -> list[dict]:
    """``n`` held-out problems as JSON-ready dicts (id, problem, answer, difficulty, bucket)."""
    return [p.to_record() for p in sample_problem_objects(n, seed, mix)]


def training_stream(seed: int, mix: tuple[float, ...] = TRAIN_MIX):
    """Endless (prompt, target) pairs from the train namespace, never the test one."""
    rng = random.Random(f"train:{seed}")
    i = 0
    while True:
        problem = make_problem(rng, _pick_bucket(rng, mix), f"train-{seed}-{i}")
        yield problem.problem, target_text(problem)
        i += 1


def _reversed_digits(value: int) -> str:
    return str(value)[::-1]


def target_text(problem: ZooProblem | dict) -> str:
    """The worked chain plus box the model learns: running partial sums, digits reversed."""
    ops = problem.operands if isinstance(problem, ZooProblem) else parse_operands(problem["problem"])
    steps, total = [], ops[0]
    for value in ops[1:]:
        total += value
        steps.append(_reversed_digits(total) + STEP_END)
    return "".join(steps) + BOX_OPEN + str(total) + BOX_CLOSE


def parse_operands(prompt: str) -> tuple[int, ...]:
    """``"485+37+96="`` -> ``(485, 37, 96)``."""
    if not prompt.endswith("="):
        raise ValueError(f"a zoo prompt ends with '=', got {prompt!r}")
    return tuple(int(part) for part in prompt[:-1].split("+"))


def longest_text() -> tuple[str, str]:
    """The longest possible prompt and target: sizes max_tokens and max_model_len."""
    top = LADDER[-1]
    biggest = 10**top.max_digits - 1
    ops = (biggest,) * top.operands
    problem = ZooProblem("longest", "+".join(map(str, ops)) + "=", str(sum(ops)), 1.0, top.level, ops)
    return problem.problem, target_text(problem)
