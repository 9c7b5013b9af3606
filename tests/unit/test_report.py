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
from cascadec.sim.synthetic import SYNTHETIC_MODELS, synthetic_bank, synthetic_problems
from cascadec.stats import mcnemar_exact

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


def test_report_plots_are_paper_ready(files, tmp_path):
    """Cost as a ratio to the reference, the oracle off the frontier, the target band, the tier
    flow's started-here / answered / passed-on with shares and accuracy per tier."""
    out = tmp_path / "rep"
    res = report(files, out, "--target", "accuracy >= largest - 5 pt", "--target", "cost <= 0.9x")
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "x: cost / L greedy" in md and "95% intervals" in md
    assert "Shaded: the target: accuracy >= L greedy - 5 pt and cost <= 0.9x L greedy" in md
    front = md.split("On the Pareto frontier:")[1].split("Not reachable")[0]
    assert "| oracle |" not in front and "Not reachable (off the frontier): the oracle router" in md
    assert "| started here | reached | answered (share) | passed on (share) | accuracy |" in md
    assert "| cascade | 0 | 80 | 80 |" in md  # every problem started at tier 0
    for name in ("accuracy_cost.png", "tier_flow.png", "reliability.png"):
        w, h = png_size(out / name)
        assert w > 500 and h > 200
    res = report(files, tmp_path / "bad", "--target", "accuracy >= nobody - 1 pt")
    assert res.exit_code == 1 and "no input strategy or baseline named 'nobody'" in res.output


def test_tier_flow_counts_problems_that_start_past_tier_0():
    from cascadec.report.analysis import flow_of

    # 100 problems: 20 routed straight to tier 1; tier 0 answers 50 of its 80, passes on 30
    f = flow_of(
        "routed", 100, [80, 50], [50, 50], last_tier=[0] * 50 + [1] * 50, correct=[1.0] * 75 + [0.0] * 25
    )
    assert f.started == [80, 20] and f.passed_on == [30, 0]
    assert f.accuracy(0) == 1.0 and f.accuracy(1) == 0.5


def test_plot_helpers_wrap_names_dedupe_signals_and_keep_labels_apart(tmp_path):
    from cascadec.report import figures
    from cascadec.report.analysis import Reliability, Scale

    marker = "mv_cascade_3.5turbo_k1_t0.0_4gpt_k1_t0.0_and_a_third_tier_that_runs_on_and_on"
    lines = figures.wrap(marker).split("\n")
    assert len(lines) == 2 and all(len(x) <= figures.WRAP_CHARS for x in lines) and lines[-1].endswith("…")
    assert figures.wrap("two-tier") == "two-tier"
    c = np.array([0.25, 0.75])

    def curve(signal, acc):
        return Reliability("s", signal, Scale.PROBABILITY, 10, c, np.array(acc), np.array([5, 5]), 0.1)

    curves = [
        curve("agreement", [0.2, 0.9]),
        curve("weighted_agreement", [0.2, 0.9]),
        curve("margin", [0.5, 0.9]),
    ]
    assert figures.distinct_signals(curves) == [("agreement", ["weighted_agreement"]), ("margin", [])]
    # crowded points: every name placed, no two overlapping, all inside the figure
    pts = [Point(f"strategy-{i}", 0.5 + 0.002 * i, 0.99 - 0.0005 * (i % 3), "strategy") for i in range(12)]
    pts.append(Point("L greedy", 1.0, 0.995, "greedy"))
    pts.append(Point("oracle", 0.3, 1.0, "oracle"))
    plt = figures._pyplot()
    captured = {}
    real_close = plt.close
    plt.close = lambda fig: captured.setdefault("fig", fig)
    try:
        front = figures.accuracy_cost(pts, "cost / L greedy", tmp_path / "a.png", ratio=True)
    finally:
        plt.close = real_close
    assert all(p.group != "oracle" for p in front)
    fig = captured["fig"]
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text

    boxes = [
        Text.get_window_extent(t, renderer) for ax in fig.axes for t in ax.texts
    ]  # the text, not its leader
    assert len(boxes) >= 13
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    real_close(fig)
    # tick labels in percentage points, never three decimals
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(len(x.split(".")[-1]) <= 2 for x in labels if "." in x)


def test_without_a_bank_cost_is_a_ratio_to_the_simulations_reference(files, tmp_path):
    res = cli("report", files / "sim.json", "--out", tmp_path / "r")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "r" / "report.md").read_text()
    assert "x: cost / L greedy" in md
    sim = json.loads((files / "sim.json").read_text())["strategies"][0]
    assert f"| {sim['cost_ratio']:.3f}× |" in md  # the strategies table's ratio is simulate's own


def test_accuracy_and_cost_ratio_intervals():
    from cascadec.report.analysis import accuracy_interval, ratio_interval
    from cascadec.stats import clopper_pearson_upper

    lo, hi = accuracy_interval((1200, 1319))
    assert hi == pytest.approx(clopper_pearson_upper(1200, 1319, 0.025), abs=1e-12)
    assert lo == pytest.approx(1 - clopper_pearson_upper(119, 1319, 0.025), abs=1e-12)
    assert accuracy_interval(np.array([1.0, 1.0, math.nan])) == accuracy_interval((2, 2))
    assert accuracy_interval(np.array([math.nan])) is None and accuracy_interval((0, 0)) is None
    assert accuracy_interval((10, 10))[1] == 1.0 and accuracy_interval((0, 10))[0] == 0.0
    rng = np.random.default_rng(1)
    ref = rng.uniform(1, 2, 500)
    lo, hi = ratio_interval(0.4 * ref * rng.uniform(0.5, 1.5, 500), ref)
    assert lo < 0.4 < hi and hi - lo < 0.1
    assert ratio_interval(ref, ref) == (1.0, 1.0) and ratio_interval(ref[:1], ref[:1]) is None
