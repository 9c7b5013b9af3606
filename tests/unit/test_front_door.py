"""One front door to the compiler (issue 21): specs in memory compile exactly as files do."""

from __future__ import annotations

import pytest
import yaml

from cascadec.compiler import compile_spec, compile_spec_data
from cascadec.errors import CompileError, SpecError
from cascadec.spec.model import Spec

SPEC = {
    "version": 1,
    "name": "two_tier",
    "models": "zoo",
    "defaults": {"max_tokens": 48, "prompt": "raw"},
    "strategy": {
        "cascade": [
            {"model": "0.034M", "k": 4, "temperature": 0.7, "escalate_if": "agreement < 0.75"},
            {"model": "1.1M"},
        ],
        "online": {"keep": 0.5},
    },
}


def _same_but_source(a, b) -> None:
    assert a.hash and a.hash == b.hash
    assert a.model_copy(update={"source": ""}) == b.model_copy(update={"source": ""})


def test_data_and_spec_objects_compile_as_the_file_does(tmp_path):
    path = tmp_path / "two_tier.yaml"
    path.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    from_file, file_diags = compile_spec(path)
    from_data, data_diags = compile_spec_data(SPEC, source="candidate")
    from_model, _ = compile_spec_data(Spec.model_validate(SPEC))
    _same_but_source(from_file, from_data)
    _same_but_source(from_file, from_model)
    assert from_data.source == "candidate"
    assert [d.code for d in file_diags] == [d.code for d in data_diags]


def test_relative_registry_paths_resolve_against_base_dir(tmp_path):
    from cascadec.sim.synthetic import synthetic_registry_yaml

    (tmp_path / "reg.yaml").write_text(synthetic_registry_yaml(), encoding="utf-8")
    data = {
        "version": 1,
        "models": "reg.yaml",
        "strategy": {"mv": {"model": "0.4M", "k": 2, "temperature": 0.7}},
    }
    plan, _ = compile_spec_data(data, base_dir=tmp_path)
    assert plan.strategies[0].tiers[0].model == "M"


def test_rejections_carry_the_compilers_codes():
    bad = {**SPEC, "strategy": {**SPEC["strategy"], "cascad": []}}
    with pytest.raises(SpecError) as exc:
        compile_spec_data(bad)
    assert exc.value.code == "E201"
    start = {
        **SPEC,
        "strategy": {
            **SPEC["strategy"],
            "adaptive_k": {"policy": "difficulty_buckets", "start_tiers": [[0.5, 0], [1.0, 2]]},
        },
    }
    with pytest.raises(CompileError, match="start tier 2 does not exist") as exc:
        compile_spec_data(start)
    assert exc.value.code == "E400"
