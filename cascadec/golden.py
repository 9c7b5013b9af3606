"""Golden plans: every shipped spec (and the seed markers) compiled to checked-in plan JSON.

A golden plan pins what the compiler makes of a spec, byte for byte: any change to a plan —
intended or not — shows up as a diff in ``tests/golden/`` that a reviewer sees. Model folders
that live inside the repository (the zoo) are written relative to it, so golden files are the
same on every machine; the hash is that of the relative plan.
"""

from __future__ import annotations

from pathlib import Path

from cascadec.plan import Plan, plan_to_json

# The original system's markers (README, "The marker language"), compiled as one table plan.
SEED_MARKERS = (
    "Qwen/Qwen2.5-Math-7B-Instruct",
    "7B",
    "mv_1.5B_k8_t0.7",
    "mv_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0",
    "mv_entropy_cascade_1.5B_k4_t0.7_7B_k4_t0.7_72B_k1_t0.0",
    "mv_cascade_7B_k5_t0.7_72B_k1_t0.0",
)
GOLDEN_DIR = Path("tests") / "golden"


def shipped_specs(root: Path) -> list[Path]:
    """Every strategy spec under ``specs/`` (model registries and schemas are not strategies)."""
    specs = root / "specs"
    skip = {specs / "models", specs / "schema", specs / "search"}  # search spaces: cascadec calibrate
    return sorted(
        p.relative_to(root)
        for p in specs.rglob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and not any(s in p.parents for s in skip)
    )


def golden_name(spec: Path) -> str:
    """``specs/sub/x.yaml`` → ``sub__x.plan.json``."""
    parts = spec.with_suffix("").parts[1:]
    return "__".join(parts) + ".plan.json"


def golden_text(plan: Plan, root: Path) -> str:
    """The plan's JSON with in-repository model paths made relative to ``root`` (and re-hashed)."""
    base = str(root.resolve())
    models = {
        key: m.model_copy(update={"path": str(Path(m.path).resolve().relative_to(base))})
        if m.path.startswith(base)
        else m
        for key, m in plan.models.items()
    }
    return plan_to_json(plan.model_copy(update={"models": models}))


def golden_plans(root: Path) -> dict[str, str]:
    """File name in ``tests/golden`` → expected content, compiled from the working tree at ``root``.

    Spec paths are given relative to ``root`` (the plans' ``source``), so run from ``root``.
    """
    from cascadec.compiler import compile_markers, compile_spec

    out = {}
    for spec in shipped_specs(root):
        plan, _ = compile_spec(spec)
        out[golden_name(spec)] = golden_text(plan, root)
    plan, _ = compile_markers(list(SEED_MARKERS), source="seed-markers")
    out["seed_markers.plan.json"] = golden_text(plan, root)
    return out
