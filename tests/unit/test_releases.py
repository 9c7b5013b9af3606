"""The raw model-output releases in data/releases: checksums, id mappings, Qwen's problem file."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "releases.py"


@pytest.fixture(scope="module")
def releases():
    if not (ROOT / "data" / "releases").is_dir():
        pytest.skip("no data/releases in this checkout")
    spec = importlib.util.spec_from_file_location("releases_tool", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_release_file_and_mapping_checks_out(releases):
    facts = releases.check()
    assert facts["routellm"].startswith("1319/1319")
    assert facts["grade-school-math"].startswith("1319/1319")
    assert facts["qwen25-math"].endswith("5 of them in MATH-500")


def test_every_release_folder_has_sources_and_licence(releases):
    folders = sorted({rel.split("/")[0] for rel in releases.SHA256})
    assert folders == ["faithful-cot", "grade-school-math", "qwen25-math", "routellm"]
    for folder in folders:
        sources = (releases.RELEASES / folder / "SOURCES.md").read_text(encoding="utf-8")
        assert (releases.RELEASES / folder / "LICENSE").is_file()
        for rel, digest in releases.SHA256.items():
            if rel.startswith(folder + "/"):
                assert digest in sources, rel


def test_qwen_problems_read_with_a_gold_each(releases):
    from cascadec.runtime.data import problems_from_frame, read_table

    problems = problems_from_frame(read_table(releases.RELEASES / "qwen25-math" / "problems.jsonl"))
    assert [p.id for p in problems] == [str(i) for i in range(100)]
    assert all(p.gold for p in problems)
