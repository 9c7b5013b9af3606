"""Build the shipped real banks (``data/banks/<name>/``) from the raw releases in ``data/releases/``.

    .venv/bin/python scripts/build_real_banks.py [NAME...]

Each bank is one ``cascadec bank import`` of the publisher's files (provenance: each release
folder's ``SOURCES.md``), priced by its registry under ``specs/models/``, every text re-graded
by cascadec's grader; the bank folder gets ``samples.parquet`` (the bank) and ``import.json``
(the import report: per-model accuracy, agreement with the publisher's verdicts, every
disagreement, what was estimated). Options per bank, and why:

- ``answer``: how answers are read — ``gsm8k`` (``#### n``, "The answer is n", then the last
  number) for the GSM8K releases, whose completions write currency as ``$18`` (which the
  ``boxed_or_final_line`` rule would read as a math span); ``boxed`` for Qwen's
  ``\\boxed{}`` completions. A spec simulated on a bank should read answers the same way
  (``defaults: {answer: gsm8k}``).
- ``temperature``: what the publisher sampled at (Faithful-CoT and RouteLLM greedy, Qwen 0.7;
  grade-school-math's systems unrecorded, left null: they replay at any temperature).
- ``prompt_overhead``: tokens of the few-shot prefix every prompt carried, estimated by the same
  ceil(characters / 4) rule as the completions: Faithful-CoT's GSM8K COT prompt
  (``source/prompt/GSM8K/COT_prompt.txt`` @ 3017843, 2,448 characters, plus ``Q: ``/``\\nA:``)
  and RouteLLM's 8 train examples (``Question: …\\nAnswer: …\\n\\n``, 3,789 characters, plus
  ``Question: ``/``\\nAnswer:``). The releases record no token counts.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RELEASES = Path("data/releases")
BANKS = Path("data/banks")
KEPT = ("samples.parquet", "import.json")


@dataclass(frozen=True)
class Bank:
    name: str
    files: tuple[str, ...]
    data: str
    models: str
    answer: str
    temperature: float | None = None
    prompt_overhead: int = 0
    model: str | None = None
    score: str | None = None
    options: dict = field(default_factory=dict)


FAITHFUL = ("code001", "code002", "text002", "text003", "gpt-3.5-turbo", "gpt4")
SPECS = (
    Bank(
        "faithful-cot",
        tuple(str(RELEASES / "faithful-cot" / f"{m}_COT" / "predictions.jsonl.gz") for m in FAITHFUL),
        data="gsm8k",
        models="specs/models/faithful-cot.yaml",
        answer="gsm8k",
        temperature=0.0,
        prompt_overhead=math.ceil((2448 + len("Q: ") + len("\nA:")) / 4),
    ),
    Bank(
        "routellm",
        (str(RELEASES / "routellm" / "gsm8k_responses.csv.gz"),),
        data="gsm8k",
        models="specs/models/routellm.yaml",
        answer="gsm8k",
        temperature=0.0,
        prompt_overhead=math.ceil((3789 + len("Question: ") + len("\nAnswer:")) / 4),
    ),
    Bank(
        "qwen-rm-example",
        (str(RELEASES / "qwen25-math" / "math_cot_100.jsonl.gz"),),
        data=str(RELEASES / "qwen25-math" / "problems.jsonl"),
        models="specs/models/qwen-rm-example.yaml",
        answer="boxed",
        temperature=0.7,
        model="qwen-rm-example",
        score="pred_score",
    ),
    Bank(
        "gsm-examples",
        (str(RELEASES / "grade-school-math" / "example_model_solutions.jsonl.gz"),),
        data="gsm8k",
        models="specs/models/gsm-examples.yaml",
        answer="gsm8k",
    ),
)


def build(spec: Bank) -> dict:
    from cascadec.sim.bank_import import import_bank

    out_dir = ROOT / BANKS / spec.name
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"cascadec-{spec.name}-") as tmp:
        result = import_bank(
            list(spec.files),
            data=spec.data,
            out=Path(tmp) / spec.name,
            models=spec.models,
            model=spec.model,
            score=spec.score,
            temperature=spec.temperature,
            prompt_overhead=spec.prompt_overhead,
            answer=spec.answer,
            zstd=True,
        )
        built = Path(tmp) / spec.name
        old = out_dir / "import.json"
        if old.is_file() and same_report(json.loads(old.read_text()), result.report):
            (built / "import.json").unlink()  # nothing but the date changed: keep the committed one
        for name in KEPT:  # the bank's own two files, replaced whole
            if (built / name).exists():
                os.replace(built / name, out_dir / name)
    return result.report


def same_report(a: dict, b: dict) -> bool:
    strip = lambda r: {k: v for k, v in json.loads(json.dumps(r, default=str)).items() if k != "created"}  # noqa: E731
    return strip(a) == strip(b)


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # the reports name the releases by their paths in the repository
    chosen = [s for s in SPECS if not argv or s.name in argv]
    for spec in chosen:
        report = build(spec)
        agreement = report["source_agreement"]
        print(f"{spec.name}: {report['samples']} samples, {report['problems_covered']} problems")
        for m in report["models"]:
            extra = f", agreement {m['agreement']:.4f}" if m.get("agreement") is not None else ""
            print(
                f"  {m['model']:40} accuracy {m['accuracy']:.4f}{extra}, cost {m['cost']:.4g} {m['cost_unit']}"
            )
        if agreement["verdicts"]:
            print(f"  publisher's verdicts: {agreement['agreement']:.4f} of {agreement['verdicts']} agree")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
