"""Golden plans: every shipped spec and the seed markers compile to the checked-in plan JSON."""

from pathlib import Path

import pytest

from cascadec.golden import GOLDEN_DIR, SEED_MARKERS, golden_name, golden_plans, shipped_specs
from cascadec.plan import plan_from_json

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "intended? regenerate with: python tools/generate.py (make generate), and review the diff"


@pytest.fixture(scope="module")
def compiled():
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)  # plans record their spec path relative to the repository
        return golden_plans(ROOT)


def test_every_shipped_spec_has_a_golden_plan(compiled):
    specs = shipped_specs(ROOT)
    assert len(specs) >= 7 and Path("specs/demo.yaml") in specs
    assert {golden_name(s) for s in specs} | {"seed_markers.plan.json"} == set(compiled)
    on_disk = {p.name for p in (ROOT / GOLDEN_DIR).glob("*.plan.json")}
    assert on_disk == set(compiled), REGENERATE


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / GOLDEN_DIR).glob("*.plan.json")))
def test_compiled_plan_equals_golden(compiled, name):
    golden = (ROOT / GOLDEN_DIR / name).read_text(encoding="utf-8")
    assert compiled.get(name) == golden, f"{name} changed; {REGENERATE}"


def test_golden_plans_are_valid_plans():
    for path in sorted((ROOT / GOLDEN_DIR).glob("*.plan.json")):
        plan = plan_from_json(path.read_text(encoding="utf-8"), source=str(path))  # checks the hash too
        assert plan.strategies and all(t.model in plan.models for s in plan.strategies for t in s.tiers)
    markers = plan_from_json((ROOT / GOLDEN_DIR / "seed_markers.plan.json").read_text(encoding="utf-8"))
    assert {s.marker for s in markers.strategies} >= {m for m in SEED_MARKERS if m.startswith("mv_")}


def test_golden_models_in_the_repository_are_relative():
    text = (ROOT / GOLDEN_DIR / "demo.plan.json").read_text(encoding="utf-8")
    assert str(ROOT) not in text and '"path": "specs/models/zoo/' in text
