#!/usr/bin/env python3
"""Check the raw model-output releases in ``data/releases/`` and how they map to problem sets.

``python tools/releases.py``          verify every file and mapping, print what was found
``python tools/releases.py --write``  also (re)write ``data/releases/qwen25-math/problems.jsonl``

Checked, per ``data/releases/*/SOURCES.md``: the sha256 of each file's original bytes (the
``.gz`` holds them unchanged); that each release's rows are the GSM8K test problems in order
(Faithful-CoT ``id`` = row, RouteLLM ``prompt`` and grade-school-math ``question`` = the row's
question); that Qwen2.5-Math's 100 problems are the rows of ``problems.jsonl`` (derived from the
file itself: ``id`` = ``idx``, ``answer`` = ``gt``) and where they sit in MATH / MATH-500.
Exit 1 with a message when anything differs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASES = ROOT / "data" / "releases"
FAITHFUL_MODELS = ("code001", "code002", "text002", "text003", "gpt-3.5-turbo", "gpt4")

SHA256 = {  # of the publisher's bytes (before gzip)
    "faithful-cot/code001_COT/predictions.jsonl.gz": "a089367b401f8fcd6ae2582cc4bda5c8281b977e3f427623529dfd33ad83b11d",
    "faithful-cot/code002_COT/predictions.jsonl.gz": "e97b947be79b947c9793c4a7ad96d6cfc205068dea9727797f34553ee71eea1b",
    "faithful-cot/text002_COT/predictions.jsonl.gz": "0f95e20140499da631f25ef8cd83823cd956594c61852a45c662d4539522abf1",
    "faithful-cot/text003_COT/predictions.jsonl.gz": "397981ecbd6e0715e48b08a586a530debd9e2f7f761aefab96fd81143c0ffb66",
    "faithful-cot/gpt-3.5-turbo_COT/predictions.jsonl.gz": "392b7331420a428e8a2a4ff0e0047cc2cbc37830d95078f9cc59603df80f9090",
    "faithful-cot/gpt4_COT/predictions.jsonl.gz": "118c8aaa2a2e886d46cfa65d02a486f5bbd4be9fd2c52e5c0c5bb06f2adbdee4",
    "routellm/gsm8k_responses.csv.gz": "1f38ed03db354a020f71e92022383dc3cf37bbf2694dea4daaeea7b6c43fe57b",
    "qwen25-math/math_cot_100.jsonl.gz": "5b9128525733336c4b5bf5d3222f72b18655a305258dc09c301b546e9365ba5e",
    "grade-school-math/example_model_solutions.jsonl.gz": "4bc62db838f8418365d51c627bd66294cbdca9fb7f01519cb13f0dce8c51580b",
}


class Mismatch(Exception):
    pass


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise Mismatch(what)


def original_bytes(rel: str) -> bytes:
    return gzip.decompress((RELEASES / rel).read_bytes())


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def shipped(name: str) -> list[dict]:
    from cascadec import datasets

    return jsonl(datasets.path_of(name).read_bytes())


def same_text(a: str, b: str) -> bool:
    """Equal up to non-breaking spaces (Faithful-CoT's copy of GSM8K replaced three)."""
    return a.replace("\xa0", " ") == b.replace("\xa0", " ")


def qwen_problems(rows: list[dict]) -> list[dict]:
    """``problems.jsonl``: the 100 problems of ``math_cot_100``, with where they sit in MATH."""
    m500 = {r["problem"]: r["unique_id"] for r in shipped("math500")}
    return [
        {
            "id": str(r["idx"]),
            "problem": r["question"],
            "answer": r["gt"],
            "level": r["level"],
            "math_answer": r["answer"],
            "math500_id": m500.get(r["question"]),
        }
        for r in rows
    ]


def check(write: bool = False) -> dict:
    facts: dict = {}
    for rel, digest in SHA256.items():
        got = hashlib.sha256(original_bytes(rel)).hexdigest()
        expect(got == digest, f"{rel}: sha256 {got}, SOURCES says {digest}")
    gsm = shipped("gsm8k")
    questions = [r["question"] for r in gsm]

    for model in FAITHFUL_MODELS:
        rows = jsonl(original_bytes(f"faithful-cot/{model}_COT/predictions.jsonl.gz"))
        expect([r["id"] for r in rows] == list(range(len(gsm))), f"Faithful-CoT {model}: ids are not 0..1318")
        expect(all(len(r["completions"]) == 1 for r in rows), f"Faithful-CoT {model}: not one completion")
        expect(all(r["completion"] == r["completions"][0] for r in rows), f"Faithful-CoT {model}: completion")
    facts["faithful-cot"] = f"6 models x {len(gsm)} rows, id = GSM8K row"

    import pandas as pd

    csv = pd.read_csv(RELEASES / "routellm/gsm8k_responses.csv.gz", dtype=str, keep_default_na=False)
    expect(len(csv) == len(gsm), f"RouteLLM: {len(csv)} rows")
    exact = sum(p == q for p, q in zip(csv["prompt"], questions, strict=True))
    expect(exact == len(gsm), f"RouteLLM: {exact} prompts equal their row's question")
    facts["routellm"] = f"{exact}/{len(gsm)} prompts = GSM8K question of the same row (exact)"

    ems = jsonl(original_bytes("grade-school-math/example_model_solutions.jsonl.gz"))
    exact = sum(r["question"] == q for r, q in zip(ems, questions, strict=True))
    gold = sum(
        r["ground_truth"] == g["answer"].replace("#### ", "A: ") for r, g in zip(ems, gsm, strict=True)
    )
    expect(exact == gold == len(gsm), f"grade-school-math: {exact} questions, {gold} ground truths match")
    facts["grade-school-math"] = f"{exact}/{len(gsm)} questions = GSM8K question of the same row (exact)"

    qwen = jsonl(original_bytes("qwen25-math/math_cot_100.jsonl.gz"))
    expect(sorted(r["idx"] for r in qwen) == list(range(100)), "Qwen: idx is not 0..99")
    problems = qwen_problems(qwen)
    text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in problems)
    target = RELEASES / "qwen25-math" / "problems.jsonl"
    if write:
        target.write_text(text, encoding="utf-8")
    expect(target.read_text(encoding="utf-8") == text, f"{target} is out of date (--write)")
    in500 = sum(p["math500_id"] is not None for p in problems)
    facts["qwen25-math"] = f"100 problems, id = idx; {in500} of them in MATH-500"
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="rewrite qwen25-math/problems.jsonl")
    args = parser.parse_args(argv)
    try:
        facts = check(write=args.write)
    except Mismatch as exc:
        print(f"releases: {exc}", file=sys.stderr)
        return 1
    for source, fact in facts.items():
        print(f"{source}: {fact}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
