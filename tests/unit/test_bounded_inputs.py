"""Bounded work and validate-then-convert (issue 24, parts 3, 4 and 6): every hostile input of
the issue's classes is a located error with a registered code, exit 1 or 2 — never exit 3, never
a silent coercion, never minutes of work before the refusal. The fuzzers of the same classes:
tests/fuzz/test_fuzz_hostile.py; serve: tests/unit/test_serve_hostile.py."""

import hashlib
import json
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.errors import CascadecError
from cascadec.runtime.backends.replay import read_bank, write_bank
from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

runner = CliRunner()

SPEC = (
    "version: 1\nname: c\nmodels: reg.yaml\ndefaults: {max_tokens: 48, prompt: raw}\nstrategy:\n  cascade:\n"
    "    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: 'agreement < 1.0'}\n"
    "    - {model: 3M}\n"
)
SPACE = SPEC + (
    "search:\n  tiers:\n    - {k: [2, 4], escalate_if: TEMPLATE, grid: GRID}\n    - {}\n"
)  # fmt: skip


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bounded")
    problems = synthetic_problems(20, seed=3)
    problems.to_json(d / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=8, seed=3), d / "bank.parquet")
    (d / "reg.yaml").write_text(synthetic_registry_yaml())
    (d / "spec.yaml").write_text(SPEC)
    code, _, err = cli("run", d / "spec.yaml", "--backend", "replay", "--bank", d / "bank.parquet",
                       "--data", d / "p.jsonl", "--out", d / "run")  # fmt: skip
    assert code == 0, err
    code, _, err = cli("simulate", d / "spec.yaml", "--bank", d / "bank.parquet", "--data", d / "p.jsonl",
                       "--equivalence", "exact", "--json", d / "sim.json")  # fmt: skip
    assert code == 0, err
    return d


# --- banks: a run's samples validated before they are converted -----------------------------
def _one(frame: pd.DataFrame, column: str, value, row: int = 3) -> pd.DataFrame:
    cells = frame[column].astype(object).tolist()
    cells[row] = value
    return frame.assign(**{column: pd.Series(cells, dtype=object)})


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("sample_index", None, "'sample_index' must be an integer"),
        ("sample_index", "x", "'sample_index' must be an integer"),
        ("sample_index", "0", "'sample_index' must be an integer, got '0'"),
        ("num_tokens", None, "'num_tokens' must be an integer"),
        ("num_tokens", 16.5, "'num_tokens' must be an integer, got 16.5"),
        ("mean_logprob", "-0.5", "'mean_logprob' must be a finite number"),
        ("token_logprobs", -0.5, "'token_logprobs' must be a list of numbers"),
        ("token_logprobs", [-0.1] * 5000, "values for a sample of"),
        ("text", 5, "'text' must be text, got int 5"),
    ],
)
def test_a_runs_samples_are_validated_before_they_become_a_bank(files, column, value, message):
    samples = pd.read_parquet(files / "run" / "samples.parquet")
    with pytest.raises(CascadecError) as err:
        read_bank(_one(samples, column, value))
    assert err.value.code == "E500" and message in err.value.message and "row 3" in str(err.value.where)


def test_bank_cells_are_never_coerced(files):
    bank = pd.read_parquet(files / "bank.parquet")
    for column, value, message in (
        ("text", 5, "'text' must be text"),
        ("logprobs", [-0.1] * 5000, "values for a sample of"),
        ("num_tokens", 16.5, "must be an integer"),
    ):
        with pytest.raises(CascadecError, match=message):
            read_bank(_one(bank, column, value))


def test_conflicting_duplicate_bank_rows_are_refused_equal_ones_kept_once(files, tmp_path):
    bank = pd.read_parquet(files / "bank.parquet")
    same = pd.concat([bank.iloc[[5]], bank], ignore_index=True)
    assert len(read_bank(same)) == len(bank)
    other = bank.iloc[[5]].assign(text="We compute. The answer is \\boxed{1}.")
    with pytest.raises(CascadecError) as err:
        read_bank(pd.concat([other, bank], ignore_index=True))
    assert err.value.code == "E500" and "rows 0 and 6 are one sample" in err.value.message
    assert "different 'text'" in err.value.message


def test_bank_info_on_a_broken_run_is_exit_1(files, tmp_path):
    samples = pd.read_parquet(files / "run" / "samples.parquet")
    _one(samples, "num_tokens", None).to_parquet(tmp_path / "bad.parquet", index=False)
    code, _, err = cli("bank", "info", tmp_path / "bad.parquet")
    assert code == 1 and "E500" in err and "row 3" in err


def test_jsonl_with_a_bom_is_read_as_csv_with_one_is(files, tmp_path):
    text = (files / "p.jsonl").read_text()
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode())
    code, _, err = cli("simulate", files / "spec.yaml", "--bank", files / "bank.parquet",
                       "--data", tmp_path / "bom.jsonl", "--equivalence", "exact")  # fmt: skip
    assert code == 0, err


# --- search spaces: bounded and validated before any template is filled ----------------------
@pytest.mark.parametrize(
    "template, grid, message",
    [
        ("x < {}", "{a: [1]}", "is not a name"),
        ("agreement < {0}", "{a: [1]}", "is not a name"),
        ("agreement < {lp", "{lp: [1]}", "not a condition template"),
        ("agreement < 1 }", "{lp: [1]}", "not a condition template"),
        ("agreement < {lp:>999999999}", "{lp: [1]}", "format spec"),
        ("agreement < {lp}", "{lp: []}", "has no values"),
        ("agreement < {lp}", "{a: [1]}", "have no grid values"),
        ("agreement < {lp}", "{lp: [.nan]}", "finite number"),
    ],
)
def test_bad_templates_and_grids_are_located_e200_everywhere(files, template, grid, message):
    path = files / f"space-{hashlib.sha1((template + grid).encode()).hexdigest()[:8]}.yaml"
    path.write_text(SPACE.replace("TEMPLATE", json.dumps(template)).replace("GRID", grid))
    for args in (
        ("lint", path),
        ("compile", "--check", path),
        ("calibrate", path, "--bank", files / "bank.parquet", "--data", files / "p.jsonl",
         "--equivalence", "exact", "--out", files / "never.yaml"),
        ("optimize", "--space", path, "--bank", files / "bank.parquet", "--data", files / "p.jsonl",
         "--equivalence", "exact"),
    ):  # fmt: skip
        code, out, err = cli(*args)
        assert code == 1, (args[0], out, err)
        assert "E200" in out + err and message in out + err and f"{path.name}:11:" in out + err
    assert not (files / "never.yaml").exists()


def test_a_huge_space_is_refused_before_any_template_is_filled(files):
    values = json.dumps([round(i / 300, 4) for i in range(300)])
    grid = "{" + ", ".join(f"{n}: {values}" for n in "abcd") + "}"
    template = "agreement < {a} or mean_logprob < {b} or margin < {c} or entropy > {d}"
    path = files / "huge.yaml"
    path.write_text(SPACE.replace("TEMPLATE", json.dumps(template)).replace("GRID", grid))
    for args in (
        ("lint", path),
        ("optimize", "--space", path, "--bank", files / "bank.parquet", "--data", files / "p.jsonl",
         "--budget", "3"),
    ):  # fmt: skip
        t0 = time.perf_counter()
        code, out, err = cli(*args)
        assert code == 1 and "16,200,000,000 candidates, more than max_candidates" in out + err
        assert time.perf_counter() - t0 < 10


# --- one validator: lint, compile and serve agree ---------------------------------------------
def test_a_17_tier_marker_is_e100_in_lint_and_compile(tmp_path):
    marker = "mv_cascade_" + "_".join(["1.5B_k1_t0.0"] * 17)
    (tmp_path / "m.txt").write_text(marker + "\n")
    code, out, _ = cli("lint", tmp_path / "m.txt")
    assert code == 1 and "E100 a cascade has at most 16 tiers; this one has 17" in out
    for command in ("compile", "explain"):
        code, _, err = cli(command, "--marker", marker)
        assert code == 1 and "E100" in err and "at most 16 tiers" in err


def test_start_tiers_beyond_the_bound_are_e200_not_exit_3(files):
    path = files / "start.yaml"
    path.write_text(
        SPEC + "  adaptive_k: {policy: difficulty_buckets, column: difficulty, start_tiers: [[5, 99]]}\n"
    )
    code, out, _ = cli("lint", path)
    assert code == 1 and "E200 strategy.adaptive_k.start_tiers[0][1]" in out
    code, _, err = cli("compile", path)
    assert code == 1 and "E200" in err


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "2"])
def test_one_rule_for_spec_versions(files, version):
    path = files / "version.yaml"
    path.write_text(SPEC.replace("version: 1", f"version: {version}"))
    code, out, _ = cli("lint", path)
    assert code == 1 and "E205" in out


def test_full_width_digits_are_not_numbers(files):
    path = files / "wide.yaml"
    path.write_text(SPEC.replace("agreement < 1.0", "agreement < ０.５"))
    code, out, _ = cli("lint", path)
    assert code == 1 and "E210" in out


# --- data: the routing column -----------------------------------------------------------------
def test_a_missing_or_empty_routing_column_is_an_error(files, tmp_path):
    path = files / "routed.yaml"
    path.write_text(
        SPEC + "  adaptive_k: {policy: difficulty_buckets, column: bucket, buckets: [[0.5, 2], [1.0, 4]]}\n"
    )
    rows = [json.loads(line) for line in (files / "p.jsonl").read_text().splitlines()]
    (tmp_path / "none.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows[4]["bucket"] = None
    for r in rows[:4] + rows[5:]:
        r["bucket"] = 0.3
    (tmp_path / "nan.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for data, message in (("none.jsonl", "no column 'bucket'"), ("nan.jsonl", "no 'bucket' value")):
        for command in ("simulate", "run"):
            extra = ("--dry-run",) if command == "run" else ("--bank", files / "bank.parquet")
            code, _, err = cli(command, path, "--data", tmp_path / data, *extra)
            assert code == 1 and "E500" in err and message in err, (command, err)


# --- report inputs: validated before any figure ----------------------------------------------
@pytest.mark.parametrize(
    "change, message",
    [
        ({"strategy": "x" * 200_000}, "200000 characters; at most 1000"),
        ({"reached": [1] * 200_000}, "'reached' has 200000 entries; at most 16"),
        ({"accuracy": 5.0}, "'accuracy' must be in [0, 1]"),
        ({"cost": float("inf")}, "'cost' must be a finite number"),
        ({"problems": True}, "'problems' must be an integer"),
    ],
)
def test_report_refuses_bad_simulation_json_fast(files, tmp_path, change, message):
    body = json.loads((files / "sim.json").read_text())
    body["strategies"][0].update(change)
    (tmp_path / "s.json").write_text(json.dumps(body))
    t0 = time.perf_counter()
    code, _, err = cli("report", tmp_path / "s.json", "--out", tmp_path / "r")
    assert code == 1 and "E500" in err and message in err and "strategies[0]" in err
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "r").exists()


def test_report_refuses_a_verdict_that_is_not_true_or_false(files, tmp_path):
    body = json.loads((files / "sim.json").read_text())
    per = body["strategies"][0]["per_problem"]
    per["correct"] = ["yes"] * len(per["correct"])
    (tmp_path / "s.json").write_text(json.dumps(body))
    code, _, err = cli("report", tmp_path / "s.json", "--out", tmp_path / "r")
    assert code == 1 and "must be true, false or null, got 'yes'" in err


def test_report_draws_dollar_names_and_refuses_too_many_strategies(files, tmp_path):
    pytest.importorskip("matplotlib")
    body = json.loads((files / "sim.json").read_text())
    body["strategies"][0]["strategy"] = "odd $ dollar $x^{2$ $"
    (tmp_path / "s.json").write_text(json.dumps(body))
    code, _, err = cli("report", tmp_path / "s.json", "--out", tmp_path / "r")
    assert code == 0, err
    body["strategies"] = [dict(body["strategies"][0], strategy=f"s{i}") for i in range(65)]
    (tmp_path / "many.json").write_text(json.dumps(body))
    code, _, err = cli("report", tmp_path / "many.json", "--out", tmp_path / "r2")
    assert code == 1 and "more than 64 strategies" in err


def test_report_on_a_corrupt_problems_parquet_is_e502(files, tmp_path):
    import shutil

    shutil.copytree(files / "run", tmp_path / "run")
    (tmp_path / "run" / "problems.parquet").write_bytes(b"garbage")
    code, _, err = cli("report", tmp_path / "run", "--out", tmp_path / "r")
    assert code == 1 and "E502 corrupt results" in err


# --- plans: load settings and greedy_only re-checked ------------------------------------------
def _plan(files, tmp_path, edit) -> str:
    code, _, err = cli("compile", files / "spec.yaml", "-o", tmp_path / "plan.json")
    assert code == 0, err
    plan = json.loads((tmp_path / "plan.json").read_text())
    edit(plan)
    body = {k: v for k, v in plan.items() if k not in ("hash", "source")}
    canonical = json.dumps(body, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    plan["hash"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()  # re-hashed: integrity holds
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(plan))
    return path


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("gpu_memory_utilization", 5, "less than or equal to 1"),
        ("tensor_parallel_size", 1000, "less than or equal to 64"),
        ("max_model_len", 0, "greater than or equal to 16"),
        ("dtype", "int3", "Input should be 'auto'"),
    ],
)
def test_plan_load_settings_are_range_checked(files, tmp_path, setting, value, message):
    path = _plan(files, tmp_path, lambda p: p["models"]["S"].update({setting: value}))
    code, _, err = cli("run", path, "--data", files / "p.jsonl", "--dry-run")
    assert code == 1 and "E401" in err and message in err


def test_a_plan_sampling_a_greedy_only_model_is_refused(files, tmp_path):
    path = _plan(files, tmp_path, lambda p: p["models"]["S"].update(greedy_only=True))
    code, _, err = cli("run", path, "--data", files / "p.jsonl", "--dry-run")
    assert code == 1 and "E400" in err and "greedy-only" in err


# --- bounded runs and the minor points ----------------------------------------------------------
def test_dry_run_rows_are_bounded(files, monkeypatch):
    import cascadec.cli_run

    monkeypatch.setattr(cascadec.cli_run, "MAX_DRY_RUN_ROWS", 5)
    code, _, err = cli("run", files / "spec.yaml", "--data", files / "p.jsonl", "--dry-run")
    assert code == 2 and "E900 --dry-run checks and routes at most 5 rows" in err
    code, _, err = cli("run", files / "spec.yaml", "--data", files / "p.jsonl", "--dry-run", "--limit", "5")
    assert code == 0, err


def test_a_replay_bank_lacking_the_datas_problems_fails_before_the_run(files, tmp_path):
    rows = [json.loads(line) for line in (files / "p.jsonl").read_text().splitlines()]
    rows += [dict(r, id="other-" + r["id"]) for r in rows]
    (tmp_path / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = cli("run", files / "spec.yaml", "--backend", "replay", "--bank", files / "bank.parquet",
                       "--data", tmp_path / "more.jsonl", "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "E501" in err and "for 20 of 40 problems" in err
    assert not (tmp_path / "out").exists()


def test_simulate_json_to_stdout_is_only_json(files):
    code, out, _ = cli("simulate", files / "spec.yaml", "--bank", files / "bank.parquet",
                       "--data", files / "p.jsonl", "--equivalence", "exact", "--json", "-")  # fmt: skip
    assert code == 0 and json.loads(out)["strategies"]


def test_optimize_and_calibrate_without_gold_answers_refuse(files, tmp_path):
    rows = [json.loads(line) for line in (files / "p.jsonl").read_text().splitlines()]
    (tmp_path / "nogold.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "problem": r["problem"]}) + "\n" for r in rows)
    )
    path = files / "ok-space.yaml"
    path.write_text(SPACE.replace("TEMPLATE", '"agreement < {a}"').replace("GRID", "{a: [0.5, 1.0]}"))
    for args in (
        ("optimize", "--space", path, "--out", tmp_path / "o"),
        ("calibrate", path, "--out", tmp_path / "c.yaml"),
    ):
        code, _, err = cli(*args, "--bank", files / "bank.parquet", "--data", tmp_path / "nogold.jsonl")
        assert code == 1 and "E500 no problem has a gold answer" in err and "RuntimeWarning" not in err


def test_bank_build_has_the_overwrite_it_suggests(files, tmp_path):
    args = ("bank", "build", "--models", files / "reg.yaml", "--data", files / "p.jsonl", "--k", "2",
            "--backend", "replay", "--bank", files / "bank.parquet", "--out", tmp_path / "b")  # fmt: skip
    assert cli(*args)[0] == 0
    code, _, err = cli(*args)
    assert code == 1 and "--overwrite" in err
    assert cli(*args, "--overwrite")[0] == 0


def test_reference_markers_resolve_against_the_spaces_registry(files, tmp_path):
    path = files / "ref-space.yaml"
    path.write_text(SPACE.replace("TEMPLATE", '"agreement < {a}"').replace("GRID", "{a: [0.5, 1.0]}"))
    # 3M is an alias of reg.yaml only (the space's registry), never of the default one
    code, _, err = cli("optimize", "--space", path, "--bank", files / "bank.parquet", "--data", files / "p.jsonl",
                       "--equivalence", "exact", "--reference", "3M", "--out", tmp_path / "o")  # fmt: skip
    assert "E105" not in err and "optimize: 4 candidates" in err, err  # (20 problems split too small: E701)


def test_models_that_is_not_a_registry_is_named_as_given(files, tmp_path):
    (tmp_path / "hostname").write_text("myhost\n")
    code, _, err = cli("report", files / "sim.json", "--out", tmp_path / "r", "--models", tmp_path / "hostname",
                       "--bank", files / "bank.parquet", "--data", files / "p.jsonl")  # fmt: skip
    assert (
        code == 1
        and "E300" in err
        and "hostname is not a model registry" in err
        and "hostname.yaml" not in err
    )
