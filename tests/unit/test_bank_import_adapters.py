"""bank import adapters on tiny fixtures modelled on the real files (lm-eval, OpenAI, wide, per-model)."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from cascadec.runtime.confidence import token_confidence
from cascadec.sim.bank import load_bank
from cascadec.sim.bank_import import import_bank
from cascadec.sim.import_adapters import read_outputs

QUESTIONS = ["Tom has 3 apples and buys 4. How many?", "What is 6 times 7?", "Half of 10?"]
GOLD = ["7", "42", "5"]


@pytest.fixture(autouse=True)
def grade_cache(tmp_path, monkeypatch):
    """Each test its own grading cache (never the user's)."""
    monkeypatch.setenv("CASCADEC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "problems.jsonl"
    rows = [
        {"id": str(i), "question": q, "answer": f"so #### {g}"}
        for i, (q, g) in enumerate(zip(QUESTIONS, GOLD, strict=True))
    ]
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def imported(files, problems, tmp_path, **kw):
    result = import_bank(files, data=problems, out=tmp_path / "bank", **kw)
    return load_bank(tmp_path / "bank"), result.report


def test_lm_eval_log_samples(tmp_path, problems):
    lines = []
    for i, (q, g) in enumerate(zip(QUESTIONS, GOLD, strict=True)):
        text = f" We compute it.\nThe answer is {g if i < 2 else 4}."
        prompt = f"Question: {q}\nAnswer:"
        for flt, got in (("strict-match", "[invalid]"), ("flexible-extract", g if i < 2 else "4")):
            lines.append(
                {
                    "doc_id": i,
                    "doc": {"question": q, "answer": f"#### {g}"},
                    "target": f"#### {g}",
                    "arguments": {
                        "gen_args_0": {"arg_0": prompt, "arg_1": {"until": ["Question:"], "do_sample": False}}
                    },
                    "resps": [[text]],
                    "filtered_resps": [got],
                    "filter": flt,
                    "metrics": ["exact_match"],
                    "exact_match": float(got == g),
                    "doc_hash": "x",
                    "prompt_hash": "y",
                    "target_hash": "z",
                }
            )
    path = jsonl(tmp_path / "org__tiny-1B" / "samples_gsm8k_2024-01-01T00-00-00.jsonl", lines)
    assert read_outputs(path).fmt == "lm-eval"
    bank, report = imported([path], problems, tmp_path)
    assert bank["model"].unique().tolist() == ["org/tiny-1B"]  # from the folder lm-eval wrote into
    assert len(bank) == 3 and (bank["temperature"] == 0.0).all()
    assert bank["source_correct"].tolist() == [True, True, False]  # the flexible-extract line's verdict
    assert bank["correct"].tolist() == [True, True, False]
    assert report["source_agreement"]["agreement"] == 1.0
    prompt_chars = len(f"Question: {QUESTIONS[0]}\nAnswer:")
    assert bank["prompt_tokens"].iloc[0] == -(-prompt_chars // 4)  # from the prompt lm-eval logged


def test_lm_eval_repeats_give_several_samples(tmp_path, problems):
    line = {
        "doc_id": 1,
        "doc": {"question": QUESTIONS[1]},
        "arguments": [["p", {"temperature": 0.7}]],
        "resps": [["The answer is 42.", "The answer is 41.", "The answer is 42."]],
        "filtered_resps": ["42"],
        "filter": "maj@3",
        "exact_match": 1.0,
    }
    path = jsonl(tmp_path / "m" / "samples_gsm8k_cot_self_consistency.jsonl", [line])
    bank, report = imported([path], problems, tmp_path, model="org/sc-7B")
    assert bank["sample_index"].tolist() == [0, 1, 2] and (bank["temperature"] == 0.7).all()
    assert bank["correct"].tolist() == [True, False, True]
    assert bank["source_correct"].isna().all()  # a vote's verdict says nothing about one sample


def chat(content, tokens, logprobs=None, n=1):
    choice = lambda i: {  # noqa: E731
        "index": i,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
        "logprobs": None
        if logprobs is None
        else {
            "content": [
                {
                    "token": "t",
                    "logprob": lp,
                    "top_logprobs": [{"token": "t", "logprob": lp}, {"token": "u", "logprob": -3.0}],
                }
                for lp in logprobs
            ]
        },
    }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [choice(i) for i in range(n)],
        "usage": {"prompt_tokens": 30, "completion_tokens": tokens, "total_tokens": 30 + tokens},
    }


def test_openai_batch_output(tmp_path, problems):
    lines = [
        {
            "id": "batch_req_1",
            "custom_id": "gsm8k-0",
            "response": {
                "status_code": 200,
                "request_id": "r",
                "body": chat("3 + 4 = 7. The answer is 7.", 12, logprobs=[-0.5, -0.25]),
            },
            "error": None,
        },
        {
            "id": "batch_req_2",
            "custom_id": "gsm8k-1",
            "response": None,
            "error": {"code": "server_error", "message": "boom"},
        },
        {
            "id": "batch_req_3",
            "custom_id": "2",
            "response": {"status_code": 200, "request_id": "r", "body": chat("The answer is 5.", 8, n=2)},
            "error": None,
        },
    ]
    path = jsonl(tmp_path / "batch_output.jsonl", lines)
    parsed = read_outputs(path)
    assert parsed.fmt == "openai" and parsed.notes == ["1 failed requests skipped"]
    models = tmp_path / "models.yaml"
    models.write_text(
        "version: 1\nmodels:\n  - id: gpt-4o-mini-2024-07-18\n    price: {input: 0.15, output: 0.6, "
        "source: openai.com/api/pricing, date: '2024-07-18'}\n"
    )
    bank, report = imported([path], problems, tmp_path, models=str(models))
    first = bank[bank["problem_id"] == "0"].iloc[0]
    assert first["logprobs"].tolist() == [-0.5, -0.25]
    assert first["confidences"].tolist() == [token_confidence([-0.5, -3.0]), token_confidence([-0.25, -3.0])]
    assert first["num_tokens"] == 12 and not first["tokens_estimated"]
    assert first["cost"] == pytest.approx(30 * 0.15e-6 + 12 * 0.6e-6)
    two = bank[bank["problem_id"] == "2"]
    assert two["sample_index"].tolist() == [0, 1] and two["tokens_estimated"].all()  # n=2: usage is the sum
    assert two["cost"].iloc[0] == pytest.approx(
        15 * 0.15e-6 + two["num_tokens"].iloc[0] * 0.6e-6
    )  # prompt shared
    assert report["matched"]["by_id_tail"] == 1 and report["matched"]["by_id"] == 2


def test_wide_table_routellm_layout(tmp_path, problems):
    path = tmp_path / "responses.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "org/weak", "strong", "org/weak_response", "strong_response"])
        w.writerow([QUESTIONS[0], "True", "True", " 3 + 4 = 7\n#### 7", "So 7 apples."])
        w.writerow([QUESTIONS[2], "False", "True", "#### 4", "Half of 10 is $5.00."])
    bank, report = imported([path], problems, tmp_path, answer="gsm8k")
    assert sorted(bank["model"].unique()) == ["org/weak", "strong"]
    assert set(bank["problem_id"]) == {"0", "2"} and report["matched"]["by_text"] == 4
    assert bank["correct"].tolist() == bank["source_correct"].tolist()


def test_wide_object_cells_grade_school_math_layout(tmp_path, problems):
    rows = [
        {
            "question": q,
            "ground_truth": f"A: {g}",
            "6b_finetuning": {"is_correct": i == 0, "solution": f"3+4=<<3+4=7>>7\nA: {7 if i == 0 else 1}"},
        }
        for i, (q, g) in enumerate(zip(QUESTIONS, GOLD, strict=True))
    ]
    path = jsonl(tmp_path / "example_model_solutions.jsonl", rows)
    assert read_outputs(path).fmt == "wide"
    bank, report = imported([path], problems, tmp_path, answer="gsm8k")
    assert bank["model"].unique().tolist() == ["6b_finetuning"]
    assert bank["correct"].tolist() == [True, False, False]
    assert report["source_agreement"]["agreement"] == 1.0


def test_per_model_faithful_cot_layout(tmp_path, problems):
    rows = [
        {
            "id": i,
            "answer": g,
            "completion": f"Some steps. The answer is {g}.",
            "completions": [f"Some steps. The answer is {g}."],
        }
        for i, g in enumerate(GOLD)
    ]
    path = jsonl(tmp_path / "gpt4_COT" / "predictions.jsonl", rows)
    assert read_outputs(path).fmt == "per-model"
    bank, report = imported([path], problems, tmp_path)
    assert bank["model"].unique().tolist() == ["gpt4_COT"]  # the folder's name
    assert bank["source_answer"].tolist() == GOLD and bank["correct"].all()
    assert "model named after the file's folder: 'gpt4_COT'" in report["notes"]


def test_per_model_qwen_rm_layout(tmp_path, problems):
    rows = [
        {
            "idx": 1,
            "question": QUESTIONS[1],
            "gt": "42",
            "code": ["\\boxed{42}", "\\boxed{41}", "\\boxed{42}"],
            "pred": ["42", "41", "42"],
            "score": [True, False, True],
            "pred_score": [[2.5], [3.0], [-1.0]],
        }
    ]
    path = jsonl(tmp_path / "math_cot_100.jsonl", rows)
    bank, report = imported([path], problems, tmp_path, model="qwen", temperature=0.7, score="pred_score")
    assert bank["sample_index"].tolist() == [0, 1, 2] and (bank["temperature"] == 0.7).all()
    assert bank["score"].tolist() == [2.5, 3.0, -1.0] == bank["score_pred_score"].tolist()
    assert bank["source_correct"].tolist() == [True, False, True] == bank["correct"].tolist()
    assert report["score"] == "score_pred_score"
