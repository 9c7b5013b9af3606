"""Laws of the compiler, on generated specs and markers.

- every valid spec compiles, and the plan survives JSON unchanged (Plan → JSON → Plan);
- marker → plan equals marker → spec (YAML twin) → plan;
- every shipped ``specs/*.yaml`` compiles to identical bytes, in this process and in others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadec.compiler import compile_marker, compile_spec
from cascadec.marker import format_temperature
from cascadec.plan import Plan, plan_from_json, plan_to_json
from cascadec.registry import load_registry
from cascadec.spec.from_marker import spec_from_marker, spec_to_yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted((ROOT / "specs").glob("*.yaml"))
REG = load_registry()
ALIASES = sorted(REG.aliases())
SETTINGS = settings(
    max_examples=int(os.environ.get("CASCADEC_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Conditions over these atoms can fire at every k >= 1 (no threshold between two steps of 1/k).
_ATOMS = st.one_of(
    st.sampled_from([0.25, 0.5, 0.75, 1.0]).map(lambda x: f"agreement < {x}"),
    st.sampled_from([0.0, 0.25, 0.5]).map(lambda x: f"no_answer > {x}"),
    st.sampled_from([0.5, 1.0]).map(lambda x: f"margin < {x}"),
    st.sampled_from([0.1, 1.5]).map(lambda x: f"mean_logprob < -{x}"),
    st.integers(1, 4000).map(lambda n: f"tokens > {n}"),
)
conditions = st.recursive(
    _ATOMS,
    lambda inner: st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
        lambda t: f"({t[0]}) {t[1]} ({t[2]})"
    ),
    max_leaves=4,
)


@st.composite
def tier(draw, first: bool = False, adaptive: bool = False):
    aliases = [a for a in ALIASES if not REG.get(a).greedy_only] if adaptive and first else ALIASES
    t = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0, 1.5])) if not (adaptive and first) else 0.7
    out = {
        "model": draw(st.sampled_from(aliases)),
        "temperature": t,
        "k": 1 if t == 0 else draw(st.integers(1, 12)),
    }
    if draw(st.booleans()):
        out["escalate_if"] = draw(conditions)
    if t > 0 and draw(st.integers(0, 3)) == 0:
        out["retry"] = {
            "when": draw(conditions),
            "extra_k": draw(st.integers(1, 4)),
            "max": draw(st.integers(1, 2)),
        }
    if draw(st.integers(0, 4)) == 0:
        out["seed"] = draw(st.integers(0, 2**31))
    return out


@st.composite
def specs(draw) -> dict:
    kind = draw(st.sampled_from(["plain", "mv", "cascade", "entropy_cascade"]))
    adaptive = kind != "plain" and draw(st.booleans())
    if kind == "plain":
        strategy: dict = {"plain": draw(st.sampled_from(ALIASES))}
    elif kind == "mv":
        strategy = {"mv": draw(tier(first=True, adaptive=adaptive))}
    else:
        n = draw(st.integers(1, 4))
        strategy = {kind: [draw(tier(first=i == 0, adaptive=adaptive)) for i in range(n)]}
        strategy["target_conf"] = draw(st.sampled_from([0.5, 0.75, 1.0]))
    if adaptive:
        ks = sorted(draw(st.lists(st.integers(1, 16), min_size=1, max_size=3, unique=True)))
        bounds = [round((i + 1) / len(ks), 3) for i in range(len(ks))]
        strategy["adaptive_k"] = draw(
            st.sampled_from(
                [
                    {
                        "policy": "difficulty_buckets",
                        "buckets": [list(b) for b in zip(bounds, ks, strict=True)],
                    },
                    {"policy": "budget", "total_budget": 100, "min_k": 1, "max_k": 8},
                    {"policy": "fixed", "escalation_k_threshold": draw(st.integers(1, 16))},
                ]
            )
        )
    if kind != "plain" and draw(st.booleans()):
        strategy["early_stop"] = {"round_size": draw(st.integers(1, 4))}
    if draw(st.booleans()):
        strategy["final_answer"] = draw(st.sampled_from(["last_tier", "most_confident", "pooled"]))
    spec = {"version": 1, "strategy": strategy}
    if draw(st.booleans()):
        spec["defaults"] = {
            "max_tokens": draw(st.integers(16, 4096)),
            "top_p": draw(st.sampled_from([0.8, 0.95, 1.0])),
        }
    return spec


def compile_yaml(text: str, name: str = "s.yaml"):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        return compile_spec(path)


@SETTINGS
@given(specs())
def test_random_valid_specs_compile(data):
    plan, diagnostics = compile_yaml(yaml.safe_dump(data))
    assert not [d for d in diagnostics if d.is_error]
    strategy = plan.strategies[0]
    for t in strategy.tiers:
        assert t.temperature > 0 or t.k == 1  # T = 0 ⇒ k = 1
        assert not (plan.models[t.model].greedy_only and (t.k > 1 or t.temperature > 0))
    assert all(t.escalate_if is not None for t in strategy.tiers[:-1]) or strategy.kind in ("plain", "mv")
    assert strategy.tiers[-1].escalate_if is None
    # Plan → JSON → Plan is the identity, and JSON is a fixed point
    text = plan_to_json(plan)
    again = plan_from_json(text)
    assert again == plan
    assert plan_to_json(again) == text


@st.composite
def markers(draw) -> str:
    kind = draw(st.sampled_from(["plain", "mv", "cascade", "entropy_cascade"]))
    if kind == "plain":
        return draw(st.sampled_from(ALIASES + [REG.get(a).id for a in ALIASES]))
    parts = []
    for _ in range(1 if kind == "mv" else draw(st.integers(1, 4))):
        t = draw(st.sampled_from([0.0, 0.5, 0.7, 1.0, 1.25]))
        k = 1 if t == 0 else draw(st.integers(1, 16))
        parts.append(f"{draw(st.sampled_from(ALIASES))}_k{k}_t{format_temperature(t)}")
    prefix = {"mv": "mv_", "cascade": "mv_cascade_", "entropy_cascade": "mv_entropy_cascade_"}[kind]
    return prefix + "_".join(parts)


def _without_source(plan: Plan) -> Plan:
    return plan.model_copy(update={"source": ""})


@SETTINGS
@given(markers())
def test_marker_plan_equals_marker_spec_plan(text):
    from_marker, _ = compile_marker(text)
    twin = spec_from_marker(text)
    from_yaml, _ = compile_yaml(spec_to_yaml(twin))
    assert _without_source(from_yaml) == _without_source(from_marker)
    assert from_yaml.hash == from_marker.hash
    # a hand-written twin without a name is keyed by the canonical marker of what runs
    unnamed, _ = compile_yaml(spec_to_yaml(twin.model_copy(update={"name": None})))
    strategy = from_marker.strategies[0]
    if strategy.marker == strategy.key:
        assert unnamed.hash == from_marker.hash


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_shipped_specs_compile_to_identical_bytes(path):
    first, diagnostics = compile_spec(path)
    assert not [d for d in diagnostics if d.is_error]
    assert plan_to_json(first) == plan_to_json(compile_spec(path)[0])


def test_shipped_specs_bytes_do_not_depend_on_the_process():
    script = (
        "import sys; from cascadec.compiler import compile_spec; from cascadec.plan import plan_to_json\n"
        "for p in sys.argv[1:]: sys.stdout.write(plan_to_json(compile_spec(p)[0]))\n"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", script, *map(str, SPEC_FILES)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=ROOT,
        )
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1] and outputs[0]
