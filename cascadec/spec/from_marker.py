"""A marker is a spec with defaults: ``spec_from_marker`` builds that spec.

Both front-ends then go through the same compiler, so a marker and its YAML twin compile
to the same plan. The spec's ``name`` is the marker's canonical text *as written*, so a
table row keeps finding its strategy under the text it carries, even when the compiler
changes the strategy (a greedy-only tier forced to k1_t0.0): the plan's ``key`` is that
name and its ``marker`` the canonical marker of what will actually run.
"""

from __future__ import annotations

from typing import Any

import yaml

from cascadec.marker import Marker, parse_marker
from cascadec.registry import ModelRegistry
from cascadec.spec.model import SPEC_VERSION, Spec, StrategySpec, TierSpec


def spec_from_marker(marker: Marker | str, registry: ModelRegistry | None = None) -> Spec:
    """The spec a marker stands for. Text is parsed first (MarkerError if invalid)."""
    if isinstance(marker, str):
        marker = parse_marker(marker, registry)
    tiers = tuple(TierSpec(model=t.alias or t.model, k=t.k, temperature=t.temperature) for t in marker.tiers)
    if marker.kind == "plain":
        strategy = StrategySpec(plain=TierSpec(model=tiers[0].model))
    elif marker.kind == "mv":
        strategy = StrategySpec(mv=tiers[0])
    else:
        strategy = StrategySpec(**{marker.kind: tiers})
    return Spec(version=SPEC_VERSION, name=str(marker), strategy=strategy)


def spec_to_data(spec: Spec) -> dict[str, Any]:
    """The spec as plain data, with only the keys that were given (so explicit nulls survive)."""
    data = spec.model_dump(mode="json", exclude_unset=True)
    data["version"] = spec.version
    strategy = data["strategy"]
    plain = strategy.get("plain")
    if isinstance(plain, dict) and set(plain) == {"model"}:
        strategy["plain"] = plain["model"]
    return data


def spec_to_yaml(spec: Spec) -> str:
    """The YAML twin of a spec: ``load_spec`` of this text gives back an equal ``Spec``."""
    data = spec_to_data(spec)
    ordered = {key: data[key] for key in ("version", "name", "models", "defaults", "strategy") if key in data}
    return yaml.safe_dump(ordered, sort_keys=False, default_flow_style=None, width=100)
