"""The shipped real banks (data/banks, built by scripts/build_real_banks.py from data/releases).

Per-model accuracy in each bank's import report equals a direct count with cascadec's
extraction and grader; the simulator and a replay run give the same figures; costs are the
registry's prices; the fast extraction path equals ``extract_answer`` on every real text.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from cascadec.api import run
from cascadec.compiler import compile_spec
from cascadec.registry import load_registry
from cascadec.runtime.answers import extract_answer
from cascadec.runtime.data import problems_from_frame, read_table
from cascadec.runtime.equivalence import Equivalence
from cascadec.sim.bank import load_bank
from cascadec.sim.import_grade import read_one
from cascadec.sim.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
BANKS = sorted((ROOT / "data" / "banks").glob("*/import.json"))
NAMES = [p.parent.name for p in BANKS]


def load(name: str):
    report = json.loads((ROOT / "data" / "banks" / name / "import.json").read_text())
    bank = load_bank(ROOT / "data" / "banks" / name)
    data = report["data"] if "/" not in report["data"] else str(ROOT / report["data"])
    problems = {p.id: p for p in problems_from_frame(read_table(data), source=data)}
    return report, bank, problems, data


def test_the_four_banks_are_shipped():
    assert set(NAMES) >= {"faithful-cot", "routellm", "qwen-rm-example", "gsm-examples"}


@pytest.mark.parametrize("name", NAMES)
def test_per_model_accuracy_equals_a_direct_count(name):
    report, bank, problems, _ = load(name)
    eq = Equivalence("math")
    fmt = report["answer_format"]
    for m in report["models"]:
        part = bank[bank["model"] == m["model"]]
        right = [
            eq.grade(problems[p].gold, extract_answer(t, fmt)) is True
            for p, t in zip(part["problem_id"], part["text"], strict=True)
        ]
        assert m["accuracy"] == pytest.approx(sum(right) / len(right)), m["model"]
        assert part["correct"].tolist() == right
        assert m["samples"] == len(part)
    for f in report["files"]:
        assert (ROOT / f["path"]).is_file()  # provenance: the release it was built from


@pytest.mark.parametrize("name", NAMES)
def test_fast_extraction_equals_extract_answer(name):
    _, bank, _, _ = load(name)
    for fmt in ("gsm8k", "boxed_or_final_line", "boxed"):
        assert [read_one(t, fmt) for t in bank["text"]] == [extract_answer(t, fmt) for t in bank["text"]]


def plain_spec(tmp_path: Path, registry: str, model: str, answer: str) -> Path:
    spec = tmp_path / "plain.yaml"
    spec.write_text(
        f"version: 1\nname: plain\nmodels: {ROOT / registry}\ndefaults: {{answer: {answer}}}\n"
        f"strategy:\n  plain: {{model: {model}}}\n"
    )
    return spec


@pytest.mark.parametrize(
    ("name", "registry", "model"),
    [
        ("faithful-cot", "specs/models/faithful-cot.yaml", "4gpt"),
        ("routellm", "specs/models/routellm.yaml", "mixtral"),
    ],
)
def test_simulate_and_replay_agree_with_the_report_and_the_prices(tmp_path, name, registry, model):
    report, bank, problems, data = load(name)
    entry = load_registry(ROOT / registry).resolve(model)
    figures = next(m for m in report["models"] if m["model"] == entry.id)
    plan, _ = compile_spec(plain_spec(tmp_path, registry, model, report["answer_format"]))
    assert plan.strategies[0].tiers[0].cost_per_token == entry.price.per_token()[1]
    sim = simulate(plan, bank, list(problems.values()))
    summary = sim.summary(0)
    assert summary["accuracy"] == pytest.approx(figures["accuracy"])
    assert summary["cost"] == pytest.approx(figures["cost"])  # the recorded per-sample costs, summed
    part = bank[bank["model"] == entry.id]
    inp, out = entry.price.per_token()
    assert part["cost"].sum() == pytest.approx((part["prompt_tokens"] * inp + part["num_tokens"] * out).sum())
    frame = read_table(data).head(40)
    done = run(plan, frame, "replay", bank=ROOT / "data" / "banks" / name)
    ids = frame["id"].astype(str).tolist()
    direct = bank[(bank["model"] == entry.id) & bank["problem_id"].isin(ids)].set_index("problem_id")[
        "correct"
    ]
    assert done["cascade_correct"].astype(bool).tolist() == [bool(direct[i]) for i in ids]


def test_qwen_bank_keeps_the_reward_model_scores():
    report, bank, _, _ = load("qwen-rm-example")
    with gzip.open(ROOT / report["files"][0]["path"], "rt") as fh:
        raw = pd.DataFrame([json.loads(line) for line in fh])
    assert report["score"] == "score_pred_score" and (bank["temperature"] == 0.7).all()
    got = bank.sort_values(
        ["problem_id", "sample_index"], key=lambda s: s.astype(int) if s.name == "problem_id" else s
    )
    want = [s[0] for scores in raw.sort_values("idx")["pred_score"] for s in scores]
    assert got["score"].tolist() == want
