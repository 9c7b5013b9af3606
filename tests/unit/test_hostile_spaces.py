"""A search space's values are checked when it loads: a located E200, never an internal error.

The fuzzer found ``early_stop: [-1]`` crashing ``calibrate`` with a raw ValidationError while the
candidates were expanded; k, round sizes, temperatures and adaptive-k policies now carry the
plan's bounds in the space's own schema.
"""

import pytest

from cascadec.errors import CascadecError
from cascadec.sim.space import compile_base, expand, load_space

SPACE = """version: 1
name: s
models: zoo
defaults: {max_tokens: 48, prompt: raw}
strategy:
  cascade:
    - {model: 0.034M, k: 4, temperature: 0.7, escalate_if: "agreement < 1.0"}
    - {model: 1.1M}
search:
  tiers:
    - {k: [2, 4], escalate_if: "agreement < {a}", grid: {a: [0.75, 1.0]}}
    - {}
  early_stop: [null, 1]
"""


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("early_stop: [null, 1]", "early_stop: [-1]", "search.early_stop"),
        ("early_stop: [null, 1]", "early_stop: [0]", "search.early_stop"),
        ("k: [2, 4]", "k: [0, 4]", "search.tiers.0.k"),
        ("k: [2, 4]", "k: [2, 100000]", "search.tiers.0.k"),
        ("k: [2, 4]", "k: [2, 4], temperature: [.nan]", "search.tiers.0.temperature"),
        ("early_stop: [null, 1]", "adaptive_k: [{policy: nope}]", "search.adaptive_k"),
        ("early_stop: [null, 1]", "adaptive_k: [{buckets: [[0.5, -2]]}]", "search.adaptive_k"),
    ],
)
def test_bad_values_are_located_errors(tmp_path, old, new, where):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE.replace(old, new))
    with pytest.raises(CascadecError) as err:
        base, space = load_space(path)
        expand(base, space, compile_base(base, path))
    assert err.value.code == "E200" and where in str(err.value)
    assert str(path) in str(err.value.where)
