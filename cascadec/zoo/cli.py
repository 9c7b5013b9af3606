"""``cascadec zoo``: sample held-out problems, train the zoo models, measure the ladder.

Heavy libraries (torch, transformers, vllm) are imported inside the commands, so importing
this module (and building the main CLI) stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cascadec.errors import ExitCode
from cascadec.zoo.task import LADDER, sample_problems

zoo_app = typer.Typer(
    help="The project's own tiny Qwen2 models on a generated sum task.", no_args_is_help=True
)
console = Console(width=140)


def default_zoo_dir() -> Path:
    from cascadec.resources import data_dir

    return data_dir("specs") / "models" / "zoo"


@zoo_app.command()
def sample(
    out: Annotated[Path, typer.Option(help="JSONL file to write")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many problems")] = 1000,
    seed: Annotated[int, typer.Option(help="Test-namespace seed (training never uses these streams)")] = 0,
) -> None:
    """Write held-out problems as JSONL: id, problem, answer, difficulty, bucket."""
    from cascadec.errors import CascadecError, error_exit
    from cascadec.limits import check_output_file, write_output

    try:
        check_output_file(out)  # never over a file of the user's (their data, say), never via a link
        rows = sample_problems(n, seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_output(out, "".join(json.dumps(row) + "\n" for row in rows))  # checked again, atomically
    except (CascadecError, OSError) as exc:
        raise error_exit(exc) from None
    console.print(f"wrote {len(rows)} problems to {out}")


@zoo_app.command()
def train(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the model folders and their registry zoo.yaml (default: specs/models/zoo, "
            "registry specs/models/zoo.yaml)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed (train namespace)")] = 0,
    minutes_scale: Annotated[
        float,
        typer.Option(
            "--minutes-scale", min=0.01, help="Multiply every model's step budget (and so its minutes)"
        ),
    ] = 1.0,
    threads: Annotated[
        int, typer.Option(min=1, help="torch CPU threads (1: robust on a shared 2-core machine)")
    ] = 1,
    only: Annotated[list[str] | None, typer.Option(help="Train only this recipe (repeatable)")] = None,
) -> None:
    """Train the three models from scratch and rewrite zoo.yaml's parameter counts."""
    from cascadec.zoo.train import RECIPES, save_model, train_one, write_registry

    out_dir = out or default_zoo_dir()
    stats_file = out_dir / "training.json"
    trained = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    for recipe in RECIPES:
        if only and recipe.name not in only:
            continue
        model, stats = train_one(
            recipe,
            seed=seed,
            scale=minutes_scale,
            threads=threads,
            log=lambda line: console.print(line, highlight=False),
        )
        save_model(model, out_dir / recipe.name)
        trained[recipe.name] = {**stats, "seed": seed, "threads": threads, "minutes_scale": minutes_scale}
        stats_file.write_text(json.dumps(trained, indent=2, sort_keys=True) + "\n")
        console.print(f"[bold]{recipe.name}[/]: {stats}")
    # the shipped zoo's registry sits beside its folder; a chosen --out gets its own inside it
    # (nothing is written outside the folder the user named)
    registry = write_registry((out_dir if out else out_dir.parent) / "zoo.yaml", out_dir)
    console.print(f"wrote {registry}")


LADDER_KEYS = ("missed_targets",)  # an earlier ``zoo eval --json`` output may be replaced


@zoo_app.command("eval")
def evaluate(
    n: Annotated[int, typer.Option("--n", min=1, help="How many held-out problems")] = 1000,
    seed: Annotated[int, typer.Option(help="Test-namespace seed of the held-out draw")] = 0,
    out: Annotated[Path, typer.Option(help="Run directory (results of the measuring run)")] = Path(
        "runs/zoo-eval"
    ),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the numbers as JSON here")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a ladder target is missed")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier run in --out (never other files)")
    ] = False,
) -> None:
    """Measure the ladder with vLLM: greedy per bucket, k=4 votes and their AUROC, the demo cascade."""
    from cascadec.errors import CascadecError, error_exit
    from cascadec.limits import check_output_file, write_output
    from cascadec.zoo.evaluate import measure

    if json_out:  # before the run: never over a file of the user's
        try:
            check_output_file(json_out, replaceable=LADDER_KEYS)
        except CascadecError as exc:
            raise error_exit(exc) from None
    ladder = measure(n, seed, out, overwrite=overwrite)
    table = Table(
        title=f"zoo ladder on {n} held-out problems (cascadec zoo sample --seed {seed})", title_justify="left"
    )
    for column in (
        "model",
        "params",
        "greedy",
        *(f"bucket {b.level}" for b in LADDER),
        "vote k4 T0.7",
        "vote AUROC",
    ):
        table.add_column(column, justify="right", overflow="fold")
    for m in ladder.models:
        table.add_row(
            m.alias,
            f"{int(m.params):,}",
            f"{m.greedy:.1%}",
            *(f"{m.by_bucket.get(b.level, float('nan')):.0%}" for b in LADDER),
            f"{m.vote:.1%}",
            "-" if m.vote_auroc != m.vote_auroc else f"{m.vote_auroc:.2f}",
        )
    console.print(table)
    c = ladder.cascade
    console.print(
        f"{c['strategy']}: accuracy {c['accuracy']:.1%}, escalated {c['escalated']:.1%}, "
        f"cost {c['cost_vs_largest']:.2f}x the largest model alone ({ladder.models[-1].alias}, greedy)"
    )
    missed = ladder.failures()
    console.print("ladder targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    if json_out:
        write_output(json_out, ladder.to_json(), replaceable=LADDER_KEYS)
    if check and missed:
        raise typer.Exit(ExitCode.FINDINGS)
