"""API pricing in model registries: one cost scale per registry, a priced tier costs its output price."""

from __future__ import annotations

import pytest

from cascadec.compiler import compile_marker
from cascadec.errors import RegistryError
from cascadec.registry import load_registry

PRICED = """\
version: 1
models:
  - id: gpt-3.5-turbo
    aliases: [3.5T]
    price: {input: 1.5, output: 2.0, source: "openai.com/pricing", date: "2023-06-13"}
  - id: gpt-4
    aliases: [4T]
    params: 1.8e12
    price: {input: 30, output: 60, unit: "USD per 1M tokens", source: "openai.com/pricing", date: "2023-06-13"}
"""


def write(tmp_path, text: str, name: str = "models.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_priced_registry_costs_output_price_per_token(tmp_path):
    registry = load_registry(write(tmp_path, PRICED))
    assert registry.priced
    cheap, strong = registry.resolve("3.5T"), registry.resolve("4T")
    assert cheap.params is None and cheap.cost_per_token == pytest.approx(2e-6)
    assert strong.price.per_token() == (pytest.approx(30e-6), pytest.approx(60e-6))
    assert strong.cost_per_token == pytest.approx(60e-6)  # the price wins over params
    plan, _ = compile_marker("mv_cascade_3.5T_k4_t0.7_4T_k1_t0.0", registry=registry)
    tiers = plan.strategies[0].tiers
    assert [t.cost_per_token for t in tiers] == [pytest.approx(2e-6), pytest.approx(60e-6)]
    assert plan.models["gpt-4"].params == pytest.approx(60e-6)


def test_thousand_token_unit(tmp_path):
    text = PRICED.replace('unit: "USD per 1M tokens"', 'unit: "USD per 1K tokens"')
    assert load_registry(write(tmp_path, text)).resolve("4T").cost_per_token == pytest.approx(0.06)


def test_mixed_scales_are_refused_naming_the_unpriced(tmp_path):
    text = PRICED + "  - id: org/self-hosted-7B\n    aliases: [7B]\n    params: 7e9\n"
    with pytest.raises(RegistryError) as err:
        load_registry(write(tmp_path, text))
    assert err.value.code == "E300"
    assert "org/self-hosted-7B" in str(err.value) and "one cost scale" in str(err.value)


@pytest.mark.parametrize(
    "entry, what",
    [
        ("  - {id: x, aliases: [1X]}\n", "needs params"),
        ("  - {id: x, price: {input: 1, output: 2, source: s, date: 2024-1-1}}\n", "price.date"),
        ("  - {id: x, price: {input: -1, output: 2, source: s, date: '2024-01-01'}}\n", "price.input"),
        ("  - {id: x, price: {input: 1, output: .nan, source: s, date: '2024-01-01'}}\n", "price.output"),
        ("  - {id: x, price: {input: 1, output: 2, date: '2024-01-01'}}\n", "price.source"),
        (
            "  - {id: x, price: {input: 1, output: 2, unit: EUR, source: s, date: '2024-01-01'}}\n",
            "price.unit",
        ),
    ],
)
def test_bad_prices_are_registry_errors(tmp_path, entry, what):
    with pytest.raises(RegistryError) as err:
        load_registry(write(tmp_path, "version: 1\nmodels:\n" + entry))
    assert err.value.code == "E300" and what in str(err.value)


def test_params_registries_are_unchanged():
    registry = load_registry()
    assert not registry.priced
    assert [e.cost_per_token for e in registry.models] == [e.params for e in registry.models]
