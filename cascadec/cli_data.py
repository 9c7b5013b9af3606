"""``cascadec data list|show``: the real problem sets shipped with cascadec.

Every ``--data`` option also takes one of these names (a file of that name wins).
Errors are one message and an exit code (1 bad content, 2 usage or I/O), never a traceback.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cascadec import datasets
from cascadec.errors import CascadecError, UsageError, error_exit

data_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, no_args_is_help=True
)


def _format(value: str) -> str:
    if value not in ("text", "json"):
        raise error_exit(UsageError(f"--format must be text or json, got {value!r}"))
    return value


def _short(text: str, width: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@data_app.command("list")
def list_command(
    format: Annotated[str, typer.Option("--format", help="text or json", callback=_format)] = "text",
) -> None:
    """The shipped problem sets: name, what it is, rows, ids, licence and source."""
    if format == "json":
        rows = [{**d.as_dict(), "file": str(datasets.HERE / d.file)} for d in datasets.DATASETS.values()]
        typer.echo(json.dumps(rows, indent=2))
        return
    for d in datasets.DATASETS.values():
        typer.echo(f"{d.name:<9}{d.title}: {d.description}")
        difficulty = d.difficulty_column or "-"
        typer.echo(
            f"{'':<9}{d.rows} rows · {d.licence} · id: {d.id_rule} · gold: {d.gold_column!r}"
            f" · difficulty: {difficulty}"
        )
        typer.echo(f"{'':<9}source: {d.source}")
    typer.echo(f"\nuse: --data NAME; licences and provenance: {datasets.HERE / 'SOURCES.md'}")


@data_app.command("show")
def show_command(
    name: Annotated[
        str, typer.Argument(metavar="NAME|FILE", help="A shipped set (data list) or a problem file.")
    ],
    rows: Annotated[int, typer.Option("--rows", min=0, help="How many problems to print.")] = 5,
    format: Annotated[str, typer.Option("--format", help="text or json", callback=_format)] = "text",
) -> None:
    """The columns and first problems of a set as cascadec reads them (id, problem, gold)."""
    from cascadec.runtime.data import problems_from_frame, read_table

    try:
        frame = read_table(name)
        problems = problems_from_frame(frame, source=name)
    except CascadecError as exc:
        raise error_exit(exc) from None
    head = [{"id": p.id, "problem": p.problem, "gold": p.gold} for p in problems[:rows]]
    summary = {
        "name": name,
        "rows": len(problems),
        "columns": [str(c) for c in frame.columns],
        "with_gold": sum(p.gold is not None for p in problems),
        "head": head,
    }
    if format == "json":
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{name}: {summary['rows']} problems, {summary['with_gold']} with a gold answer")
    typer.echo(f"columns: {', '.join(summary['columns'])}")
    width = max((len(r["id"]) for r in head), default=0)
    for r in head:
        typer.echo(f"  {r['id']:<{width}}  gold={r['gold']!s:<16} {_short(r['problem'], 90)}")


def register(app: typer.Typer) -> None:
    app.add_typer(
        data_app, name="data", help="Real problem sets shipped with cascadec (usable as --data NAME)."
    )
