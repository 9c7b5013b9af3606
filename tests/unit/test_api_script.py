"""The pandas API runs as pasted (issue 23 item 5): ``models=`` as on the command line, and the
spawn requirement refused up front — a script whose top level would be re-run by a spawned
worker gets a clear E900 before any run folder exists. Real subprocesses, the replay backend."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest

import cascadec
from cascadec.api import _under_main_guard, check_spawn_safe, run
from cascadec.errors import CascadecError
from cascadec.runtime.testing import bank_from_answers

ROOT = Path(__file__).resolve().parents[2]
MARKER = "mv_0.034M_k4_t0.7"

SETUP = f"""
import sys
import pandas as pd
import cascadec
from cascadec.runtime.testing import bank_from_answers

df = pd.DataFrame({{"id": ["a", "b"], "problem": ["2+2", "1+1"], "answer": ["4", "2"]}})
bank = bank_from_answers({{("cascadec-zoo/arith-0.034M", "a"): ["4"] * 4, ("cascadec-zoo/arith-0.034M", "b"): ["2", "2", "2", "3"]}})
MARKER = {MARKER!r}
"""


def script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    path = tmp_path / "analysis.py"
    path.write_text(SETUP + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def test_readme_style_script_with_models_keyword_runs(tmp_path):
    done = script(
        tmp_path,
        """
        if __name__ == "__main__":
            out = cascadec.run(MARKER, df, backend="replay", bank=bank, models="zoo", out="runs/x", progress=False)
            print(list(out["cascade_final_answer"]), out["cascade_correct"].tolist())
            print(len(cascadec.load_results("runs/x")))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "['4', '2'] [True, True]" in done.stdout and done.stdout.strip().endswith("2")
    assert (tmp_path / "runs" / "x").is_dir()


def test_top_level_vllm_run_is_refused_before_anything_is_made(tmp_path):
    done = script(
        tmp_path,
        """
        out = cascadec.run(MARKER, df, backend="vllm", models="zoo", out="runs/x")
        """,
    )
    assert done.returncode != 0
    assert "E900" in done.stderr and 'if __name__ == "__main__":' in done.stderr
    assert "analysis.py" in done.stderr and "spawn" in done.stderr
    assert "Traceback" in done.stderr and "worker log" not in done.stderr
    assert not (tmp_path / "runs").exists()  # no half-made run folder


def test_a_guarded_call_inside_functions_is_allowed(tmp_path):
    done = script(
        tmp_path,
        """
        from cascadec.api import check_spawn_safe

        def main():
            check_spawn_safe("vllm")  # would be refused at the top level
            print("ok")

        if __name__ == "__main__":
            main()
        """,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_spawned_worker_re_running_the_script_is_refused(tmp_path):
    done = script(
        tmp_path,
        """
        import multiprocessing as mp

        def work():
            pass

        try:
            cascadec.run(MARKER, df, backend="replay", bank=bank, models="zoo", progress=False)
            print("parent ran" if __name__ == "__main__" else "child ran", flush=True)
        except cascadec.CascadecError as exc:
            print("child refused:", exc.code, "re-ran" in exc.message, flush=True)
            sys.exit(3)

        if __name__ == "__main__":
            p = mp.get_context("spawn").Process(target=work)
            p.start()
            p.join()
            print("child exit", p.exitcode)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["parent ran", "child refused: E900 True", "child exit 3"]


def test_models_keyword_and_the_deprecated_registry_alias():
    df = pd.DataFrame({"id": ["a"], "problem": ["2+2"], "answer": ["4"]})
    bank = bank_from_answers({("cascadec-zoo/arith-0.034M", "a"): ["4"] * 4})
    out = run(MARKER, df, "replay", bank=bank, models="zoo", progress=False)
    assert list(out["cascade_final_answer"]) == ["4"]
    with pytest.warns(DeprecationWarning, match="use models="):
        run(MARKER, df, "replay", bank=bank, registry="zoo", progress=False)
    with pytest.raises(CascadecError, match="models= only"):
        run(MARKER, df, "replay", bank=bank, models="zoo", registry="other.yaml", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # models= alone: no warning
        run(MARKER, df, "replay", bank=bank, models="zoo", progress=False)
    assert cascadec.run is run


def test_guard_detection(tmp_path):
    src = tmp_path / "s.py"
    src.write_text(
        'import x\nx.run()\nif __name__ == "__main__":\n    x.run()\n    y = 1\nif "__main__" == __name__:\n    x.run()\n'
    )
    assert not _under_main_guard(str(src), 2)
    assert (
        _under_main_guard(str(src), 4) and _under_main_guard(str(src), 5) and _under_main_guard(str(src), 7)
    )
    assert _under_main_guard(str(tmp_path / "missing.py"), 1)  # cannot tell: never refuse


def test_notebooks_and_tests_are_not_refused():
    check_spawn_safe("vllm")  # pytest's own entry point is guarded; no script top level here


def test_the_readme_pandas_example_runs_as_a_script(tmp_path):
    import re

    blocks = [
        b
        for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
        if "cascadec.run(" in b
    ]
    assert blocks
    block = blocks[0]
    assert 'if __name__ == "__main__":' in block
    call = 'cascadec.run("mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0", df, backend="vllm", out="runs/x")'
    assert call in block  # the same example, with the replay backend and the zoo instead of a GPU
    block = block.replace(
        call, 'cascadec.run(MARKER, df, backend="replay", bank=bank, models="zoo", out="runs/x")'
    )
    (tmp_path / "problems.jsonl").write_text(
        '{"id": "a", "problem": "2+2", "answer": "4"}\n{"id": "b", "problem": "1+1", "answer": "2"}\n'
    )
    done = script(tmp_path, block)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "x").is_dir()
