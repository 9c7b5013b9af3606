"""cascadec report: a replay run and a simulation on a synthetic bank, through the real CLI.
Every PNG is written and valid, the Markdown references them, output is deterministic, and bad
inputs or an existing report give one message and exit 1/2."""

import json
import math
import os
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.plan import plan_to_json
from cascadec.report.analysis import Point, paired, pareto_frontier, reliability
from cascadec.runtime.backends.replay import write_bank
from cascadec.runtime.testing import make_plan, strategy, tier
from cascadec.stats import mcnemar_exact
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
C = SYNTHETIC_MODELS


def cli(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.output
    return res


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    problems = synthetic_problems(80, seed=4)
    problems.to_json(d / "p.jsonl", orient="records", lines=True)
    write_bank(synthetic_bank(problems, k=8, temperatures=(0.7,), seed=4), d / "bank.parquet")
    runs = {
        "cascade": [tier("S", 4, escalate_if="agreement < 1.0", cost=C["S"]), tier("L", 1, 0.0, cost=C["L"])],
        "mv-M": [tier("M", 4, cost=C["M"])],
    }
    for key, tiers in runs.items():
        (d / f"{key}.json").write_text(plan_to_json(make_plan([strategy(key, tiers)], C)))
    sim_plan = make_plan(
        [
            strategy(
                "three-tier",
                [
                    tier("S", 2, escalate_if="agreement < 1.0", cost=C["S"]),
                    tier("M", 4, escalate_if="agreement < 0.75", cost=C["M"]),
                    tier("L", 1, 0.0, cost=C["L"]),
                ],
            )
        ],
        C,
    )
    (d / "sim_plan.json").write_text(plan_to_json(sim_plan))
    common = ["--data", d / "p.jsonl", "--equivalence", "exact"]
    for key in runs:
        out = d / key
        res = cli(
            "run",
            d / f"{key}.json",
            *common,
            "--out",
            out,
            "--backend",
            "replay",
            "--bank",
            d / "bank.parquet",
        )
        assert res.exit_code == 0, res.output
    res = cli(
        "simulate", d / "sim_plan.json", *common, "--bank", d / "bank.parquet", "--json", d / "sim.json"
    )
    assert res.exit_code == 0, res.output
    return d


def report(files, out, *extra):
    return cli(
        "report",
        files / "cascade",
        files / "mv-M",
        files / "sim.json",
        "--bank",
        files / "bank.parquet",
        "--data",
        files / "p.jsonl",
        "--equivalence",
        "exact",
        "--out",
        out,
        *extra,
    )


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_writes_every_png_and_references_them(files, tmp_path):
    out = tmp_path / "rep"
    res = report(files, out)
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    for name in ("accuracy_cost.png", "tier_flow.png", "reliability.png"):
        w, h = png_size(out / name)
        assert w > 100 and h > 100
        assert f"]({name})" in md
    # every strategy, the baselines with the oracle, reliability with ECE, the paired tests
    for text in (
        "cascade",
        "mv-M",
        "three-tier",
        "S greedy",
        "L vote@8 T0.7",
        "| oracle | oracle |",
        "agreement",
        "McNemar p",
    ):
        assert text in md, text
    assert "cost ratios are to **L greedy**".lower() in md.lower() and "× oracle cost" in md
    # the simulation's per-problem outcomes pair it with the run's strategies
    assert "| cascade | three-tier | 80 |" in md


def test_report_is_deterministic_and_not_overwritten_silently(files, tmp_path):
    out = tmp_path / "rep"
    assert report(files, out).exit_code == 0
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".cascadec.lock"}  # pid, time
    res = report(files, out)
    assert res.exit_code == 1 and "E502" in res.output and "--overwrite" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".cascadec.lock"} == first
    assert report(files, out, "--overwrite").exit_code == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".cascadec.lock"} == first


def test_report_without_a_bank_has_no_baselines(files, tmp_path):
    res = cli("report", files / "cascade", "--out", tmp_path / "r")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Not computed: give `--bank BANK --data FILE`" in md
    assert (tmp_path / "r" / "reliability.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["missing-dir"], 2, "no such run directory"),
        (["{bad}"], 1, "not a simulation JSON"),
        (["{notsim}"], 1, "not a `cascadec simulate --json` output"),
        (["{fifo}"], 2, "not a regular file"),  # never waits for a writer
        (["{deep}"], 1, "nested too deeply"),
        (["{run}", "--bank", "{bank}"], 2, "--bank and --data go together"),
        (["{run}", "--equivalence", "fuzzy"], 2, "--equivalence"),
    ],
)
def test_bad_inputs_are_one_message(files, tmp_path, args, code, message):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "notsim.json").write_text(json.dumps({"accuracy": 1}))
    (tmp_path / "deep.json").write_text("[" * 100_000)
    os.mkfifo(tmp_path / "fifo.json")
    subs = {
        "{bad}": tmp_path / "bad.json",
        "{notsim}": tmp_path / "notsim.json",
        "{fifo}": tmp_path / "fifo.json",
        "{deep}": tmp_path / "deep.json",
        "{run}": files / "cascade",
        "{bank}": files / "bank.parquet",
    }
    res = cli("report", *[subs.get(a, a) for a in args], "--out", tmp_path / "out")
    assert res.exit_code == code, res.output
    assert message in res.output
    assert not (tmp_path / "out").exists()


def test_a_directory_of_other_files_is_refused(files, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    res = cli("report", files / "cascade", "--out", tmp_path, "--overwrite")
    assert res.exit_code == 1 and "cascadec did not write (mine.txt)" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_mcnemar_and_paired_bootstrap_on_a_known_table():
    # 10 problems: both right on 2, only a on 1, only b on 7
    a = np.array([1, 1, 1] + [0] * 7, dtype=float)
    b = np.array([1, 1, 0] + [1] * 7, dtype=float)
    test = mcnemar_exact(a == 1, b == 1)
    assert (test["only_a"], test["only_b"]) == (1, 7)
    assert test["p_value"] == pytest.approx(2 * (1 + 8) / 2**8)  # two-sided exact binomial
    ids = [f"p{i}" for i in range(10)]
    p = paired("a", ids, a, "b", ids[::-1], b[::-1])  # paired by id, not by position
    assert p["p_value"] == pytest.approx(test["p_value"]) and p["diff"] == pytest.approx(-0.6)
    lo, hi = p["ci95"]
    assert lo <= -0.6 <= hi and hi < 0
    assert paired("a", ids, a, "b", ids, b) == p  # seeded: the same interval every time
    assert paired("a", ["x"], [1.0], "b", ["y"], [1.0]) is None


def test_reliability_of_a_calibrated_and_an_overconfident_signal():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 20000)
    right = (rng.uniform(0, 1, conf.size) < conf).astype(float)
    assert reliability("s", "agreement", conf, right).ece < 0.02
    assert reliability("s", "agreement", np.full(conf.size, 0.99), right) is None  # constant: ranks nothing
    over = reliability("s", "agreement", np.clip(conf + 0.3, 0, 1), right)
    assert over.ece > 0.15
    lp = reliability("s", "mean_logprob", np.log(conf), right)  # exp() reads it as a probability
    assert lp.ece < 0.02
    ent = reliability("s", "entropy", 1 - conf, right)
    assert ent.ece is None and ent.accuracy[0] > ent.accuracy[-1]  # lower entropy, more often right
    assert reliability("s", "agreement", np.array([0.5, math.nan]), np.array([1.0, 0.0])) is None


def test_pareto_frontier():
    pts = [Point("a", 1, 0.5, "s"), Point("b", 2, 0.4, "s"), Point("c", 2, 0.8, "s"), Point("d", 3, 0.8, "s")]
    assert [p.name for p in pareto_frontier(pts)] == ["a", "c"]
