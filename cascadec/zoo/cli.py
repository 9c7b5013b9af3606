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

from cascadec.zoo.task import LADDER, sample_problems

zoo_app = typer.Typer(help="The project's own tiny Qwen2 models on a generated sum task.", no_args_is_help=True)
console = Console(width=140)


def default_zoo_dir() -> Path:
    from cascadec.resources import data_dir

    return data_dir("specs") / "models" / "zoo"


def default_registry() -> Path:
    return default_zoo_dir().parent / "zoo.yaml"


@zoo_app.command()
def sample(
    out: Annotated[Path, typer.Option(help="JSONL file to write")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many problems")] = 1000,
    seed: Annotated[int, typer.Option(help="Test-namespace seed (training never uses these streams)")] = 0,
) -> None:
    """Write held-out problems as JSONL: id, problem, answer, difficulty, bucket."""
    rows = sample_problems(n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    console.print(f"wrote {len(rows)} problems to {out}")


@zoo_app.command()
def train(
    out: Annotated[Path | None, typer.Option(help="Folder for the model folders (default: specs/models/zoo)")] = None,
    seed: Annotated[int, typer.Option(help="Training seed (train namespace)")] = 0,
    minutes_scale: Annotated[float, typer.Option(
        "--minutes-scale", min=0.01, help="Multiply every model's step budget (and so its minutes)")] = 1.0,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads (1: robust on a shared 2-core machine)")] = 1,
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
        model, stats = train_one(recipe, seed=seed, scale=minutes_scale, threads=threads,
                                 log=lambda line: console.print(line, highlight=False))
        save_model(model, out_dir / recipe.name)
        trained[recipe.name] = {**stats, "seed": seed, "threads": threads, "minutes_scale": minutes_scale}
        stats_file.write_text(json.dumps(trained, indent=2, sort_keys=True) + "\n")
        console.print(f"[bold]{recipe.name}[/]: {stats}")
    registry = write_registry(out_dir.parent / "zoo.yaml", out_dir)
    console.print(f"wrote {registry}")


@zoo_app.command("eval")
def evaluate(
    n: Annotated[int, typer.Option("--n", min=1, help="How many held-out problems")] = 1000,
    seed: Annotated[int, typer.Option(help="Test-namespace seed")] = 0,
    models: Annotated[Path | None, typer.Option(help="Registry YAML (default: the shipped zoo.yaml)")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the numbers as JSON here")] = None,
) -> None:
    """Measure the ladder on vLLM: greedy per bucket, the small model's votes, the cascade."""
    from cascadec.registry import load_registry
    from cascadec.zoo.evaluate import cascade_report, greedy_report, run_model, vote_report

    registry = load_registry(models or default_registry())
    entries = sorted(registry.models, key=lambda e: e.params)
    problems = sample_problems(n, seed)
    prompts = [p["problem"] for p in problems]
    runs = []
    for entry in entries:
        console.print(f"generating with {entry.id} ...")
        runs.append(run_model(entry.id, registry.weights_path(entry), prompts, entry.max_model_len or 128))
    greedy = [greedy_report(run, problems) for run in runs]
    votes = [vote_report(run, problems) for run in runs]
    cascade = cascade_report(runs, problems) if len(runs) >= 3 else None

    table = Table(title=f"zoo ladder on {n} held-out problems (seed {seed})")
    for column in ("model", "params", "greedy", *(f"b{b.level}" for b in LADDER), "vote k4", "AUROC"):
        table.add_column(column, justify="right")
    for entry, g, v in zip(entries, greedy, votes, strict=True):
        table.add_row(entry.aliases[0] if entry.aliases else entry.id, f"{entry.params:.3g}",
                      f"{g['greedy']:.1%}", *(f"{g['by_bucket'].get(b.level, 0):.0%}" for b in LADDER),
                      f"{v['vote']:.1%}", f"{v['auroc']:.2f}")
    console.print(table)
    if cascade:
        console.print(f"cascade small(k4) -> middle(k4) -> large(k1): accuracy {cascade['accuracy']:.1%}, "
                      f"escalated {cascade['escalated']:.1%}, reached large {cascade['reached_large']:.1%}")
    if out:
        numbers = {"n": n, "seed": seed, "cascade": cascade,
                   "models": {e.id: {"params": e.params, **g, **v}
                              for e, g, v in zip(entries, greedy, votes, strict=True)}}
        out.write_text(json.dumps(numbers, indent=2) + "\n")
