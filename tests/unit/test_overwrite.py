"""Nothing destructive by default: only ``--overwrite`` replaces a run, and only a run."""

import json

import pytest
import typer
from test_run_cli import app, files, invoke_replay  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from cascadec.errors import RunDirError
from cascadec.runtime.overwrite import is_run_dir, refuse_existing, replace_run


def make_run_dir(path):
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"plan_hash": "sha256:x", "plan_source": "x.yaml"}))
    (path / "samples.jsonl").write_text("")
    return path


def test_replace_run_removes_a_run_and_nothing_else(tmp_path):
    assert replace_run(tmp_path / "missing") is False
    (tmp_path / "empty").mkdir()
    assert replace_run(tmp_path / "empty") is False and (tmp_path / "empty").is_dir()
    run = make_run_dir(tmp_path / "run")
    assert is_run_dir(run)
    assert replace_run(run) is True and not run.exists()


def test_replace_run_refuses_a_folder_of_user_files(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    (mine / "manifest.json").write_text("{not a run manifest")
    with pytest.raises(RunDirError, match="cascadec did not write") as info:
        replace_run(mine)
    assert info.value.code == "E502" and "thesis.tex" in str(info.value)
    assert (mine / "thesis.tex").read_text() == "precious"
    with pytest.raises(RunDirError, match="cascadec did not write"):
        refuse_existing(mine)
    refuse_existing(tmp_path / "new")  # a new directory is fine


def test_run_needs_overwrite_to_replace_a_finished_run(app, files):  # noqa: F811
    data = ["--data", files / "data.jsonl", "--equivalence", "exact", "--no-progress"]
    first = invoke_replay(app, files, files / "plan.json", *data)
    assert first.exit_code == 0, first.stderr
    manifest = json.loads((files / "out" / "manifest.json").read_text())
    again = invoke_replay(app, files, files / "plan.json", *data)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    assert json.loads((files / "out" / "manifest.json").read_text()) == manifest, "the old run is intact"
    both = invoke_replay(app, files, files / "plan.json", *data, "--resume", "--overwrite")
    assert both.exit_code == 2 and "give one" in both.stderr
    (files / "out" / "problems.parquet").unlink()  # a file the earlier run wrote and no longer has
    replaced = invoke_replay(app, files, files / "plan.json", *data, "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert (files / "out" / "problems.parquet").exists()
    assert json.loads((files / "out" / "manifest.json").read_text())["created"] >= manifest["created"]


def test_run_overwrite_never_deletes_user_files(app, files):  # noqa: F811
    out = files / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    r = invoke_replay(app, files, files / "plan.json", "--data", files / "data.jsonl", "--overwrite", out=out)
    assert r.exit_code == 1 and "cascadec did not write (notes.txt)" in r.stderr and "E502" in r.stderr
    assert (out / "notes.txt").read_text() == "keep me"


def test_zoo_eval_refuses_an_existing_out_before_running(tmp_path):
    from cascadec.zoo.evaluate import measure

    out = make_run_dir(tmp_path / "zoo-eval")
    with pytest.raises(RunDirError, match="--overwrite"):
        measure(4, 0, out, backend="replay")
    assert (out / "manifest.json").exists(), "nothing deleted without --overwrite"


def test_demo_leaves_a_folder_it_did_not_make(tmp_path):
    from cascadec.demo import is_demo_run, register

    demo_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @demo_app.callback()
    def _root() -> None:
        """test root"""

    register(demo_app)
    out = make_run_dir(tmp_path / "someone-elses-run")
    assert not is_demo_run(out)
    r = CliRunner().invoke(demo_app, ["demo", "--n", "2", "--out", str(out), "--backend", "replay"])
    assert r.exit_code != 0 and "--overwrite" in str(r.exception) + r.output
    assert (out / "manifest.json").exists() and (out / "samples.jsonl").exists()


def test_overwrite_refuses_a_run_that_is_still_writing(tmp_path):
    from cascadec.runtime.rundir import RunDirLock

    run = make_run_dir(tmp_path / "busy")
    with RunDirLock(run), pytest.raises(RunDirError, match="another cascadec run is writing"):
        replace_run(run)
    assert (run / "manifest.json").exists()
