"""A plan file's hash proves it intact, never trusted (issue 24): ``trust_remote_code``, ``path``
and every load setting in a plan file are checked against a registry — the one given with
``--models``, else the shipped ones — before anything loads.
"""

import json
import subprocess
import sys

import pytest

from cascadec.errors import PlanError
from cascadec.plan import PlanModel, plan_to_json, seal
from cascadec.runtime.backends.replay import write_bank
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier

ROWS = [{"id": f"p{i}", "problem": f"{i}+{i}=", "answer": str(2 * i)} for i in range(3)]


def plan_with(**settings):
    plan = make_plan([strategy("c", [tier("S", 1, 0.0)])], {"S": 1.5})
    model = plan.models["S"].model_copy(update=settings)
    return seal(plan.model_copy(update={"models": {"S": PlanModel(**model.model_dump())}, "hash": ""}))


@pytest.fixture
def files(tmp_path):
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    write_bank(bank_from_answers({("S", r["id"]): [r["answer"]] for r in ROWS}), tmp_path / "bank.parquet")
    return tmp_path


def cascadec(*args):
    return subprocess.run(
        [sys.executable, "-m", "cascadec", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def run(files, plan_path, *extra, backend="replay"):
    return cascadec(
        "run", plan_path, "--data", files / "data.jsonl", "--out", files / "out", "--backend", backend,
        "--bank", files / "bank.parquet", "--equivalence", "exact", "--no-progress", *extra,
    )  # fmt: skip


def test_trust_remote_code_in_a_resealed_plan_is_refused(files):
    plan = plan_with(trust_remote_code=True)
    assert '"trust_remote_code": true' in plan_to_json(plan)  # the hash matches: integrity holds
    (files / "plan.json").write_text(plan_to_json(plan))
    for args in (
        ("run", files / "plan.json"),
        ("simulate", files / "plan.json", "--bank", files / "bank.parquet", "--data", files / "data.jsonl"),
    ):
        done = run(files, files / "plan.json") if args[0] == "run" else cascadec(*args)
        assert done.returncode == 1, done.stderr
        assert "E403" in done.stderr and "trust_remote_code" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (files / "out").exists()


def test_a_registry_that_lists_it_vouches_for_it(files):
    (files / "plan.json").write_text(plan_to_json(plan_with(trust_remote_code=True)))
    (files / "reg.yaml").write_text(
        "models:\n  - {id: S, path: /models/S, params: 1.5, trust_remote_code: true}\n"
    )
    done = run(files, files / "plan.json", "--models", files / "reg.yaml")
    assert done.returncode == 0, done.stderr
    assert "E403" not in done.stderr and "W402" not in done.stderr
    (files / "other.yaml").write_text("models:\n  - {id: S, path: /models/S, params: 1.5}\n")
    done = run(files, files / "plan.json", "--models", files / "other.yaml", "--overwrite")
    assert done.returncode == 1 and "E403" in done.stderr  # listed, but not with remote code


def test_a_plan_files_own_path_never_loads(files):
    (files / "plan.json").write_text(plan_to_json(plan_with(path="/home/someone/their-model")))
    replay = run(files, files / "plan.json")  # replay loads nothing from the path: it runs, warned
    assert replay.returncode == 0, replay.stderr
    assert "W402" in replay.stderr and "their-model" in replay.stderr
    done = run(files, files / "plan.json", "--overwrite", backend="vllm")
    assert done.returncode == 1 and "E403" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "weights folder" not in done.stderr  # refused before a model was looked for


def test_plans_compiled_from_a_shipped_registry_need_nothing(files):
    from cascadec.compiler import compile_marker, load_any

    plan, _ = compile_marker("mv_0.034M_k4_t0.7", "zoo")
    (files / "zoo.json").write_text(plan_to_json(plan))
    _, diags = load_any(str(files / "zoo.json"))
    assert not [d for d in diags if d.code == "W402"]
    tampered = json.loads(plan_to_json(plan))
    model = next(iter(tampered["models"].values()))
    model["dtype"] = "float16"  # one load setting changed, hash recomputed
    plan2 = seal(type(plan).model_validate({**tampered, "hash": ""}))
    (files / "tampered.json").write_text(plan_to_json(plan2))
    _, diags = load_any(str(files / "tampered.json"))
    assert [d.code for d in diags if d.code == "W402"] == ["W402"]
    model["trust_remote_code"] = True
    plan3 = seal(type(plan).model_validate({**tampered, "hash": ""}))
    (files / "remote.json").write_text(plan_to_json(plan3))
    with pytest.raises(PlanError) as info:
        load_any(str(files / "remote.json"))
    assert info.value.code == "E403"
