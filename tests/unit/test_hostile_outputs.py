"""Output paths of the evidence commands never destroy: not an input, not a user's file, not half a file.

``simulate --json`` once wrote its figures over the problems file it was given, and
``calibrate --out SPACE --overwrite`` over its own search space; both now refuse (exit 2, the
files untouched) before any work, and still replace an earlier output of their own.
"""

import hashlib

import pytest
from typer.testing import CliRunner

from cascadec.cli import app
from cascadec.sim.synthetic import (
    SYNTHETIC_SPACE,
    write_synthetic_search,
)

runner = CliRunner()
SPACE = SYNTHETIC_SPACE


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = write_synthetic_search(tmp_path_factory.mktemp("outs"), 200, seed=3)
    (d / "sim.yaml").write_text(SPACE.split("search:")[0])
    (d / "notes.json").write_text('{"mine": "keep"}\n')
    return d


def digest(folder) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def simulate(files, json_out):
    return runner.invoke(
        app,
        [
            "simulate",
            str(files / "sim.yaml"),
            "--bank",
            str(files / "bank.parquet"),
            "--data",
            str(files / "p.jsonl"),
            "--json",
            str(json_out),
            "--equivalence",
            "exact",
        ],
    )


def calibrate(files, out, *extra):
    return runner.invoke(
        app,
        [
            "calibrate",
            str(files / "space.yaml"),
            "--bank",
            str(files / "bank.parquet"),
            "--data",
            str(files / "p.jsonl"),
            "--out",
            str(out),
            "--equivalence",
            "exact",
            *extra,
        ],
    )


@pytest.mark.parametrize("victim", ["p.jsonl", "bank.parquet", "sim.yaml", "notes.json", "."])
def test_simulate_json_never_replaces_an_input_or_a_user_file(files, victim):
    before = digest(files)
    res = simulate(files, files / victim)
    assert res.exit_code == 2, res.output
    assert "E901" in res.output and "Traceback" not in res.output
    assert digest(files) == before


def test_simulate_json_replaces_its_own_earlier_output(files, tmp_path):
    out = tmp_path / "sim.json"
    assert simulate(files, out).exit_code == 0
    first = out.read_text()
    assert simulate(files, out).exit_code == 0
    assert out.read_text() == first
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("victim", ["space.yaml", "p.jsonl", "reg.yaml", "notes.json"])
def test_calibrate_out_never_replaces_an_input_even_with_overwrite(files, victim):
    before = digest(files)
    res = calibrate(files, files / victim, "--overwrite")
    assert res.exit_code == 2, res.output
    assert "E901" in res.output and "Traceback" not in res.output
    assert digest(files) == before


def test_calibrate_json_never_replaces_an_input(files, tmp_path):
    before = digest(files)
    res = calibrate(files, tmp_path / "cal.yaml", "--json", str(files / "p.jsonl"))
    assert res.exit_code == 2, res.output
    assert digest(files) == before and not (tmp_path / "cal.yaml").exists()


def test_calibrate_overwrite_replaces_its_own_calibrated_spec(files, tmp_path):
    out = files / "calibrated.yaml"  # beside the registry the spec names
    first = calibrate(files, out, "--max-loss", "5", "--json", str(tmp_path / "cert.json"))
    assert first.exit_code == 0, first.output
    again = calibrate(files, out, "--max-loss", "5", "--overwrite", "--json", str(tmp_path / "cert.json"))
    assert again.exit_code == 0, again.output


def test_report_refuses_planted_symlinks_and_never_writes_their_targets(files, tmp_path):
    """A link planted where the report wrote a file is not cascadec's: refused, --overwrite or not."""
    pytest.importorskip("matplotlib")
    sim = tmp_path / "sim.json"
    assert simulate(files, sim).exit_code == 0
    out = tmp_path / "rep"
    assert runner.invoke(app, ["report", str(sim), "--out", str(out)]).exit_code == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file\n")
    for name in ("report.md", "accuracy_cost.png"):
        (out / name).unlink()
        (out / name).symlink_to(victim)
    res = runner.invoke(app, ["report", str(sim), "--out", str(out), "--overwrite"])
    assert res.exit_code == 1 and "E502" in res.output and "accuracy_cost.png (a link" in res.output
    assert victim.read_text() == "the user's own file\n"
    assert (out / "report.md").is_symlink() and (out / "accuracy_cost.png").is_symlink()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
