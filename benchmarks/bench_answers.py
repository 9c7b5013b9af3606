"""Grading agreement on the peers' own test suites: cascadec vs math-verify used directly.

The corpus is ``tests/data/answers/``: Math-Verify's parametrised tests (``math_verify_tests.jsonl``,
ported by AST from huggingface/Math-Verify ``tests/``) and the cases of hendrycks/math, the
Qwen2.5-Math grader, prm800k's grader, lm-evaluation-harness's minerva_math and gsm8k filters and
issue 11 (``peer_cases.jsonl``), each row naming its repository and file.

- equivalence agreement: share of (gold, pred, expected) rows where the verdict is the expected one;
  cascadec grades with :func:`cascadec.runtime.equivalence.grade_texts`, math-verify with
  ``verify(parse(gold), parse(pred))`` under the test's own extraction configs;
- extraction agreement: share of (text, answer) rows where the extracted answer equals the expected
  one (cascadec: ``extract_answer`` then its own grader; math-verify: ``verify(parse(answer), parse(text))``).

    python benchmarks/bench_answers.py [--smoke] [--json OUT] [--show-misses]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from harness import emit, script_args  # noqa: E402

CORPUS = HERE.parent / "tests" / "data" / "answers"


def load_corpus() -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for f in sorted(CORPUS.glob("*.jsonl")) for line in f.open() if line.strip()]
    equivalence = [r for r in rows if r.get("kind", "equivalence") == "equivalence"]
    extraction = [r for r in rows if r.get("kind") == "extraction"]
    return equivalence, extraction


def math_verify_direct(gold: str, pred: str, match_types: str = "latex,expr") -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = []
    if "latex" in match_types:
        configs.append(LatexExtractionConfig(boxed_match_priority=0))
    if "expr" in match_types:
        configs.append(ExprExtractionConfig())
    return bool(verify(parse(gold, configs), parse(pred, configs)))


def ours_equivalence(rows: list[dict]) -> list[bool | None]:
    from cascadec.runtime.equivalence import Equivalence, grade_texts

    eq = Equivalence()
    return [grade_texts(r["gold"], r["pred"], eq) for r in rows]


def ours_extraction(rows: list[dict]) -> list[bool]:
    from cascadec.runtime.answers import extract_answer, normalize
    from cascadec.runtime.equivalence import Equivalence

    eq = Equivalence()
    out = []
    for r in rows:
        got = extract_answer(r["text"])
        out.append(got is not None and eq.grade(normalize(r["answer"]), got) is True)
    return out


def main() -> None:
    show = "--show-misses" in sys.argv
    if show:
        sys.argv.remove("--show-misses")
    args = script_args(__doc__.splitlines()[0])
    equivalence, extraction = load_corpus()
    if args.smoke:
        equivalence, extraction = equivalence[:20], extraction[:10]
    ours_eq = ours_equivalence(equivalence)
    mv_eq = [
        math_verify_direct(r["gold"], r["pred"], r.get("match_types", "latex,expr")) for r in equivalence
    ]
    ours_ex = ours_extraction(extraction)
    mv_ex = [math_verify_direct("$" + r["answer"] + "$", r["text"]) for r in extraction]

    def agree(verdicts, rows, key="expected"):
        return sum(bool(v) == r[key] for v, r in zip(verdicts, rows, strict=True)) / max(1, len(rows))

    for r in extraction:
        r["expected"] = True
    figures = {
        "answers_equivalence_agreement": round(agree(ours_eq, equivalence), 4),
        "answers_extraction_agreement": round(agree(ours_ex, extraction), 4),
    }
    absolute = {
        "equivalence_cases": len(equivalence),
        "extraction_cases": len(extraction),
        "math_verify_equivalence_agreement": round(agree(mv_eq, equivalence), 4),
        "math_verify_extraction_agreement": round(agree(mv_ex, extraction), 4),
        "ungraded": sum(v is None for v in ours_eq),
    }
    print(json.dumps(absolute))
    if show:
        for v, m, r in zip(ours_eq, mv_eq, equivalence, strict=True):
            if bool(v) != r["expected"]:
                print(
                    f"EQ miss (mv {'ok' if m == r['expected'] else 'miss'})",
                    r["source"],
                    r.get("test", ""),
                    repr(r["gold"])[:80],
                    "|",
                    repr(r["pred"])[-120:],
                    "expected",
                    r["expected"],
                )
        for v, m, r in zip(ours_ex, mv_ex, extraction, strict=True):
            if not v:
                print(
                    f"EX miss (mv {'ok' if m else 'miss'})",
                    r["source"],
                    repr(r["text"])[-100:],
                    "->",
                    r["answer"],
                )
    emit(args, figures, absolute)


if __name__ == "__main__":
    main()
