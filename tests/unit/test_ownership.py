"""cascadec deletes or replaces only what it wrote, proven by its folder's record (issue 24).

Real processes on real files: a run folder the user added files to, a folder holding a copied
``manifest.json`` beside a thesis, evidence aimed into a run folder, two calibrates racing for
one ``--out``, a dangling symlink as an output, a report killed half-way.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cascadec.errors import RunDirError
from cascadec.outputs import RECORD, REPORT, RUN, OwnedDir, survey
from cascadec.plan import plan_to_json
from cascadec.runtime.backends.replay import write_bank
from cascadec.runtime.overwrite import replace_run
from cascadec.runtime.testing import bank_from_answers, make_plan, strategy, tier
from cascadec.sim.synthetic import (
    SYNTHETIC_SPACE,
    write_synthetic_search,
)

MODELS = {"S": 1.5, "L": 72.0}


def cascadec(*args, cwd=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "cascadec", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("own")
    plan = make_plan(
        [strategy("c", [tier("S", 2, escalate_if="agreement < 1.0"), tier("L", 1, 0.0)])], MODELS
    )
    (d / "plan.json").write_text(plan_to_json(plan))
    rows = [{"id": f"p{i}", "problem": f"{i}+{i}=", "answer": str(2 * i)} for i in range(4)]
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = {}
    for i in range(4):
        answers[("S", f"p{i}")] = [str(2 * i), "0"]
        answers[("L", f"p{i}")] = [str(2 * i)]
    write_bank(bank_from_answers(answers), d / "bank.parquet")
    return d


def run(files, out, *extra):
    return cascadec(
        "run",
        files / "plan.json",
        "--data",
        files / "data.jsonl",
        "--out",
        out,
        "--backend",
        "replay",
        "--bank",
        files / "bank.parquet",
        "--equivalence",
        "exact",
        "--no-progress",
        *extra,
    )


@pytest.fixture
def a_run(files, tmp_path):
    out = tmp_path / "run"
    done = run(files, out)
    assert done.returncode == 0, done.stderr
    return out


def test_a_run_records_every_file_it_wrote(a_run):
    record = json.loads((a_run / RECORD).read_text())
    assert record["kind"] == "run"
    assert set(record["files"]) == {
        "manifest.json",
        "plan.json",
        "problems.parquet",
        "samples.parquet",
    }  # the journals (samples.jsonl, problems.jsonl) went once the run finished
    hashed = list(record["files"].values())
    assert len(hashed) == 4 and all(len(h) == 1 and h[0].startswith("sha256:") for h in hashed)


def test_overwrite_never_deletes_files_added_to_a_run(files, a_run):
    (a_run / "notes.txt").write_text("my notes")
    (a_run / "mydata").mkdir()
    (a_run / "mydata" / "x.csv").write_text("1,2\n")
    before = snapshot(a_run)
    for extra in ((), ("--overwrite",), ("--resume",)):
        done = run(files, a_run, *extra)
        assert done.returncode == 1, (extra, done.stderr)
        assert "E502" in done.stderr and "notes.txt" in done.stderr and "mydata/" in done.stderr
        assert "Traceback" not in done.stderr
        assert snapshot(a_run) == before, extra
    with pytest.raises(RunDirError, match="did not write"):
        replace_run(a_run)
    assert snapshot(a_run) == before


def test_a_copied_manifest_makes_no_run(files, a_run, tmp_path):
    folder = tmp_path / "F"
    folder.mkdir()
    shutil.copy(a_run / "manifest.json", folder / "manifest.json")
    (folder / "thesis.tex").write_text("draft")
    done = run(files, folder, "--overwrite")
    assert done.returncode == 1 and "thesis.tex" in done.stderr and "E502" in done.stderr
    assert (folder / "thesis.tex").read_text() == "draft" and (folder / "manifest.json").exists()
    # a copied record does not help: it lists the run's files, not the thesis
    shutil.copy(a_run / RECORD, folder / RECORD)
    done = run(files, folder, "--overwrite")
    assert done.returncode == 1 and "thesis.tex" in done.stderr
    assert (folder / "thesis.tex").read_text() == "draft"


def test_a_file_changed_or_replaced_by_a_link_is_no_longer_cascadecs(files, a_run, tmp_path):
    (a_run / "plan.json").write_text((a_run / "plan.json").read_text() + " ")
    done = run(files, a_run, "--overwrite")
    assert done.returncode == 1 and "plan.json (changed since cascadec wrote it)" in done.stderr
    assert (a_run / "plan.json").read_text().endswith(" ")
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (a_run / "plan.json").unlink()
    (a_run / "plan.json").symlink_to(victim)
    done = run(files, a_run, "--overwrite")
    assert done.returncode == 1 and "plan.json (a link" in done.stderr
    assert victim.read_text() == "mine" and (a_run / "plan.json").is_symlink()


def test_overwrite_replaces_exactly_the_run(files, a_run):
    before = json.loads((a_run / RECORD).read_text())
    done = run(files, a_run, "--overwrite")
    assert done.returncode == 0, done.stderr
    assert json.loads((a_run / RECORD).read_text())["files"].keys() == before["files"].keys()


def test_a_damaged_record_touches_nothing(files, a_run):
    (a_run / RECORD).write_text("{broken")
    before = snapshot(a_run)
    done = run(files, a_run, "--overwrite")
    assert done.returncode == 1 and "damaged" in done.stderr and "by hand" in done.stderr
    assert snapshot(a_run) == before


def test_runs_of_older_versions_are_adopted_only_when_nothing_else_is_there(files, a_run):
    (a_run / RECORD).unlink()  # as an older cascadec left it
    s = survey(a_run, RUN)
    assert s.legacy and s.kind == "run" and not s.foreign
    (a_run / "notes.txt").write_text("mine")
    done = run(files, a_run, "--overwrite")
    assert done.returncode == 1 and "notes.txt" in done.stderr
    (a_run / "notes.txt").unlink()
    done = run(files, a_run, "--overwrite")
    assert done.returncode == 0, done.stderr
    assert json.loads((a_run / RECORD).read_text())["kind"] == "run"


def test_zoo_eval_overwrite_never_deletes_user_files(tmp_path):
    from cascadec.zoo.evaluate import measure

    out = tmp_path / "zoo-eval"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"plan_hash": "sha256:x"}))
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RunDirError, match="keep.txt"):
        measure(4, 0, out, backend="replay", overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"


SPACE = SYNTHETIC_SPACE


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    d = write_synthetic_search(tmp_path_factory.mktemp("evidence"), 120, seed=5)
    (d / "sim.yaml").write_text(SPACE.split("search:")[0])
    return d


def test_evidence_never_goes_into_a_run_or_bank_folder(files, evidence, a_run):
    before = snapshot(a_run)
    ev = evidence
    common = ("--bank", ev / "bank.parquet", "--data", ev / "p.jsonl", "--equivalence", "exact")
    attempts = {
        "optimize": ("optimize", "--space", ev / "space.yaml", *common, "--out", a_run, "--overwrite"),
        "optimize --json": ("optimize", "--space", ev / "space.yaml", *common, "--json", a_run / "f.json"),
        "calibrate": ("calibrate", ev / "space.yaml", *common, "--out", a_run / "cal.yaml", "--overwrite"),
        "simulate": ("simulate", ev / "sim.yaml", *common, "--json", a_run / "sim.json"),
        "report": ("report", a_run, "--out", a_run, "--overwrite"),
        "compile": ("compile", ev / "sim.yaml", "-o", a_run / "plan2.json"),
        "zoo sample": ("zoo", "sample", "--out", a_run / "p.jsonl", "--n", "2"),
    }
    for what, args in attempts.items():
        done = cascadec(*args)
        assert done.returncode in (1, 2), (what, done.stdout, done.stderr)
        assert "E502" in done.stderr + done.stdout, (what, done.stderr)
        assert "Traceback" not in done.stderr
        assert snapshot(a_run) == before, what


def test_two_calibrates_to_one_out_never_both_write(evidence, tmp_path):
    out = tmp_path / "cal.yaml"
    argv = [
        sys.executable,
        "-m",
        "cascadec",
        "calibrate",
        str(evidence / "space.yaml"),
        *("--bank", str(evidence / "bank.parquet"), "--data", str(evidence / "p.jsonl")),
        *("--out", str(out), "--equivalence", "exact", "--max-loss", "10"),
    ]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    wrote = [r for r in results if r[0] == 0]
    assert len(wrote) == 1, results
    assert sum(f"wrote {out}" in r[1] for r in results) == 1
    loser = next(r for r in results if r[0] != 0)
    assert loser[0] == 2 and "E901" in loser[2] and "--overwrite" in loser[2], loser
    assert out.read_text().startswith("# Calibrated by")


def test_zoo_sample_never_writes_through_a_symlink(tmp_path):
    target = tmp_path / "elsewhere" / "secret.jsonl"
    target.parent.mkdir()
    link = tmp_path / "problems.jsonl"
    link.symlink_to(target)  # dangling
    done = cascadec("zoo", "sample", "--out", link, "--n", "3")
    assert done.returncode == 2 and "E901" in done.stderr and "symbolic link" in done.stderr
    assert not target.exists() and link.is_symlink()
    done = cascadec("zoo", "sample", "--out", tmp_path / "fresh.jsonl", "--n", "3")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "fresh.jsonl").read_text().splitlines()) == 3


def test_a_report_killed_half_way_is_finished_on_the_next_try(evidence, tmp_path):
    pytest.importorskip("matplotlib")
    sim = tmp_path / "sim.json"
    done = cascadec(
        "simulate", evidence / "sim.yaml", "--bank", evidence / "bank.parquet", "--data", evidence / "p.jsonl",
        "--equivalence", "exact", "--json", sim,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "rep"
    # what a kill after the first PNG leaves: that PNG recorded, the next one half-written
    with OwnedDir(out, REPORT) as folder:
        folder.write("accuracy_cost.png", b"\x89PNG\r\n\x1a\n(first figure)")
        folder.files["tier_flow.png"] = []
        folder._save()
    (out / ".tier_flow.png.4242.tmp").write_bytes(b"\x89PNG half")
    done = cascadec("report", sim, "--out", out)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [".cascadec.lock", RECORD, "accuracy_cost.png", "reliability.png", "report.md", "tier_flow.png"]
    )
    assert (out / "accuracy_cost.png").read_bytes() != b"\x89PNG\r\n\x1a\n(first figure)"
    done = cascadec("report", sim, "--out", out)  # a finished report is replaced only when asked
    assert done.returncode == 1 and "--overwrite" in done.stderr
    assert cascadec("report", sim, "--out", out, "--overwrite").returncode == 0
