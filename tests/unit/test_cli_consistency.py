"""Issue 23 item 7, the quick ones: tiers count from 0 everywhere (explain included); a zoo
alias linted without ``--models zoo`` gets a hint naming the registry that knows it."""

from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.compiler.explain import policy_lines
from cascadec.plan import AdaptiveK
from cascadec.runtime.testing import strategy, tier

runner = CliRunner()


def test_explain_counts_tiers_from_zero_as_specs_and_reports_do():
    res = runner.invoke(app, ["explain", "specs/demo.yaml"])
    assert res.exit_code == 0, res.output
    rows = [line for line in res.stdout.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows[:3]] == ["0", "1", "2"]
    assert "start tier by 'bucket' (<= 1: tier 0, <= 4: tier 1, <= 5: tier 2" in " ".join(res.stdout.split())
    s = strategy("c", [tier("S", 4, escalate_if="agreement < 1"), tier("L", 1, 0.0)])
    s = s.model_copy(
        update={
            "adaptive_k": AdaptiveK(
                policy="difficulty_buckets", buckets=((0.5, 2), (1.0, 8)), escalation_k_threshold=8
            )
        }
    )
    assert any("skip tier 0 when k >= 8" in line for line in policy_lines(s))


def test_a_zoo_alias_without_models_zoo_gets_a_hint():
    res = runner.invoke(app, ["lint", "-"], input="mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0\n")
    assert res.exit_code == 1
    assert "unknown model '0.034M'" in res.stdout and "did you mean --models zoo?" in res.stdout
    assert "1.5B" not in res.stdout  # no misleading close match from the default registry
    res = runner.invoke(
        app, ["lint", "--models", "zoo", "-"], input="mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0\n"
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["lint", "-"], input="mv_1.6B_k4_t0.7\n")  # not in any shipped registry
    assert "did you mean 1.5B?" in res.stdout and "--models" not in res.stdout


def test_calibrate_and_optimize_take_the_space_both_ways(tmp_path):
    import json

    from cascadec.runtime.backends.replay import write_bank
    from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

    problems = synthetic_problems(200, seed=4)
    problems.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=4, temperatures=(0.7,), seed=4), tmp_path / "bank.parquet")
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    (tmp_path / "space.yaml").write_text(
        "version: 1\nmodels: reg.yaml\ndefaults: {max_tokens: 48, prompt: raw}\nstrategy:\n  cascade:\n"
        '    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}\n    - {model: 3M}\n'
        'search:\n  tiers:\n    - {escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}, optional: true}\n    - {}\n'
    )
    common = [
        "--bank",
        str(tmp_path / "bank.parquet"),
        "--data",
        str(tmp_path / "p.jsonl"),
        "--equivalence",
        "exact",
    ]
    space = str(tmp_path / "space.yaml")
    for i, spelling in enumerate(([space], ["--space", space])):
        out = tmp_path / f"c{i}.yaml"
        res = runner.invoke(app, ["calibrate", *spelling, *common, "--out", str(out), "--max-loss", "20"])
        assert res.exit_code == 0 and out.exists(), res.output
        report = tmp_path / f"f{i}.json"
        res = runner.invoke(app, ["optimize", *spelling, *common, "--json", str(report), "--no-progress"])
        assert res.exit_code == 0 and json.loads(report.read_text())["space"] == space, res.output
    for command in ("calibrate", "optimize"):
        res = runner.invoke(
            app, [command, *common, "--out" if command == "calibrate" else "--json", str(tmp_path / "n")]
        )
        assert res.exit_code == 2 and "SPACE or --space SPACE" in res.output
        res = runner.invoke(
            app,
            [
                command,
                space,
                "--space",
                str(tmp_path / "other.yaml"),
                *common,
                "--out",
                str(tmp_path / "n.yaml"),
            ],
        )
        assert res.exit_code == 2 and "two search spaces" in res.output


def test_simulate_warns_when_the_bank_was_recorded_at_another_token_budget(tmp_path):
    import pandas as pd

    from cascadec.runtime.backends.replay import write_bank
    from cascadec.runtime.testing import bank_from_answers
    from cascadec.sim.synthetic import synthetic_registry_yaml

    answers = {("S", p): ["4", "4", "4", "5"] for p in ("a", "b")} | {("L", p): ["4"] for p in ("a", "b")}
    bank = bank_from_answers(answers)
    bank["temperature"] = [0.7 if m == "S" else 0.0 for m in bank["model"]]
    bank["num_tokens"] = 20
    bank.loc[bank.index[:2], ["num_tokens", "finish_reason"]] = [48, "length"]  # two S samples cut at 48
    write_bank(bank, tmp_path / "bank.parquet")
    pd.DataFrame({"id": ["a", "b"], "problem": ["2+2", "2+2"], "answer": ["4", "4"]}).to_json(
        tmp_path / "p.jsonl", orient="records", lines=True
    )
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())

    def simulate(max_tokens):
        spec = tmp_path / f"s{max_tokens}.yaml"
        spec.write_text(
            f"version: 1\nmodels: reg.yaml\ndefaults: {{max_tokens: {max_tokens}, prompt: raw}}\nstrategy:\n"
            '  cascade:\n    - {model: 0.1M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}\n    - {model: 3M}\n'
        )
        res = runner.invoke(
            app,
            [
                "simulate",
                str(spec),
                "--bank",
                str(tmp_path / "bank.parquet"),
                "--data",
                str(tmp_path / "p.jsonl"),
                "--equivalence",
                "exact",
            ],
        )
        assert res.exit_code == 0, res.output
        return " ".join(res.stderr.split())

    assert "warning" not in simulate(48)
    more = simulate(128)
    assert "tier 0 (0.1M) asks max_tokens 128, but the bank's samples of it were recorded at 48" in more
    assert "tier 1" not in more  # 3M's samples were never cut
    less = simulate(32)
    assert "asks max_tokens 32, but 2 of the bank's 8 samples of it are longer (up to 48 tokens)" in less


def test_only_an_unfinished_run_is_offered_resume(tmp_path):
    import pandas as pd
    import pytest

    from cascadec.api import run
    from cascadec.errors import BackendError, RunDirError
    from cascadec.runtime.testing import bank_from_answers

    df = pd.DataFrame({"id": ["a", "b"], "problem": ["2+2", "1+1"], "answer": ["4", "2"]})
    model = "cascadec-zoo/arith-0.034M"
    out = tmp_path / "run"
    with pytest.raises(BackendError):  # the bank lacks problem b: the run stops half-way
        run(
            "mv_0.034M_k4_t0.7",
            df,
            "replay",
            bank=bank_from_answers({(model, "a"): ["4"] * 4}),
            models="zoo",
            out=out,
            progress=False,
            batch_size=1,
        )
    full = bank_from_answers({(model, "a"): ["4"] * 4, (model, "b"): ["2"] * 4})
    with pytest.raises(RunDirError, match="did not finish; pass --resume to finish it"):
        run("mv_0.034M_k4_t0.7", df, "replay", bank=full, models="zoo", out=out, progress=False)
    run("mv_0.034M_k4_t0.7", df, "replay", bank=full, models="zoo", out=out, progress=False, resume=True)
    with pytest.raises(RunDirError, match=r"finished run \(2 problems\)") as done:
        run("mv_0.034M_k4_t0.7", df, "replay", bank=full, models="zoo", out=out, progress=False)
    assert "--resume" not in str(done.value) and "problems.parquet" in str(done.value)


def test_simulate_prints_the_cost_ratio_beside_the_raw_cost(tmp_path):
    import json

    from cascadec.runtime.backends.replay import write_bank
    from cascadec.sim.synthetic import synthetic_bank, synthetic_problems, synthetic_registry_yaml

    problems = synthetic_problems(100, seed=3)
    problems.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=4, temperatures=(0.7,), seed=3), tmp_path / "bank.parquet")
    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml())
    common = ["--models", str(tmp_path / "reg.yaml"), "--bank", str(tmp_path / "bank.parquet")]
    common += ["--data", str(tmp_path / "p.jsonl"), "--equivalence", "exact", "--json", "-"]

    def simulate(target, *extra):
        res = runner.invoke(app, ["simulate", target, *common, *extra])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout), res.stderr  # --json -: only the JSON on stdout, the table on stderr

    cascade, text = simulate("mv_cascade_0.1M_k4_t0.7_3M_k1_t0.0")
    reference, _ = simulate("3M")
    assert cascade["reference"] == "3M greedy" and reference["cost_ratio"] == 1.0
    assert cascade["cost_ratio"] == round(cascade["cost"] / reference["cost"], 6)
    assert "cost_ratio = total cost / total cost of 3M greedy on the same problems" in " ".join(text.split())
    other, _ = simulate("mv_cascade_0.1M_k4_t0.7_3M_k1_t0.0", "--reference", "0.4M")
    assert other["reference"] == "0.4M" and other["cost_ratio"] != cascade["cost_ratio"]
