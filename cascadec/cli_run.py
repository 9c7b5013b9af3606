"""``cascadec run``: execute a plan, spec or marker over a problem table.

Everything is checked before any model loads (data, plan, prompts, conditions, routing); a
problem is one message and an exit code by the one rule (``cascadec.errors.exit_code``), never
a traceback: 1 for bad content (data, plan, spec, backend), 2 for usage and I/O errors. ``--dry-run`` stops after the checks and prints
the routing breakdown.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.core.policies import EquivalenceMode
from cascadec.errors import CascadecError, InputFileError, UsageError, error_exit
from cascadec.limits import MAX_DRY_RUN_ROWS
from cascadec.runtime.equivalence import DEFAULT_BUDGET


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""

    @app.command("run")
    def run_command(
        target: Annotated[
            str | None, typer.Argument(metavar="SPEC|PLAN", help="Spec .yaml, plan .json or marker text.")
        ] = None,
        data: Annotated[
            Path | None, typer.Option("--data", help="Problems: .jsonl, .csv or .parquet.")
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Run directory (results, journals).")] = None,
        marker: Annotated[str | None, typer.Option("--marker", help="Run this marker.")] = None,
        backend: Annotated[str, typer.Option("--backend", help="vllm, openai, ray or replay.")] = "vllm",
        bank: Annotated[
            Path | None,
            typer.Option("--bank", help="Sample bank (replay): its parquet file or its directory."),
        ] = None,
        endpoints: Annotated[
            str | None,
            typer.Option("--endpoints", help="openai: endpoints.json (model id → URL) or one base URL."),
        ] = None,
        replicas: Annotated[
            int, typer.Option("--replicas", min=1, help="ray: engine replicas per model.")
        ] = 1,
        ray_address: Annotated[
            str | None, typer.Option("--ray-address", help="ray: cluster to join (default: a local one).")
        ] = None,
        column: Annotated[str | None, typer.Option("--column", help="Per-row strategy column.")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Finish the run in --out.")] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an earlier run in --out (never other files).")
        ] = False,
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Only the first N problems.")
        ] = None,
        models: Annotated[
            Path | None, typer.Option("--models", help="Model registry: YAML file or shipped name (zoo).")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Check and show routing; load no model.")
        ] = False,
        batch_size: Annotated[
            int, typer.Option("--batch-size", min=1, help="Most requests in flight at once.")
        ] = 1024,
        schedule: Annotated[
            str,
            typer.Option(
                "--schedule",
                help="continuous (a problem's next round starts as soon as its samples are in) "
                "or barrier (each round waits for the whole batch).",
            ),
        ] = "continuous",
        equivalence: Annotated[
            str, typer.Option("--equivalence", help="math (math-verify) or exact.")
        ] = "math",
        grading_budget: Annotated[
            float,
            typer.Option(
                "--grading-budget",
                metavar="SECONDS",
                help="Most seconds of math-verify grading per problem; past it the problem's "
                "remaining answer pairs are left ungraded (flagged 'grading_over_budget').",
            ),
        ] = DEFAULT_BUDGET,
        progress: Annotated[
            bool | None, typer.Option("--progress/--no-progress", help="Progress bars.")
        ] = None,
    ) -> None:
        """Run strategies over problems, one model at a time; results in --out."""
        options = dict(locals())  # exactly the command's parameters, by name
        try:
            _run(**options)
        except (CascadecError, OSError) as exc:  # OSError: an unwritable --out, a full disk; not a crash
            raise error_exit(exc) from None
        except KeyboardInterrupt:
            where = f" with: cascadec run ... --out {out} --resume" if out else ""
            sys.stderr.write(f"interrupted; finished samples are kept, continue{where}\n")
            raise typer.Exit(130) from None


def _run(
    *,
    target,
    data,
    out,
    marker,
    backend,
    bank,
    endpoints,
    replicas,
    ray_address,
    column,
    resume,
    overwrite,
    limit,
    models,
    dry_run,
    batch_size,
    schedule,
    equivalence,
    grading_budget,
    progress,
) -> None:
    from cascadec.runtime.backends import BACKENDS, make_backend

    if target is not None and marker is not None:
        raise UsageError("give either a SPEC/PLAN argument or --marker, not both")
    if target is None and marker is None and column is None:
        raise UsageError("nothing to run: give a SPEC or PLAN, --marker TEXT, or --column with markers")
    if data is None:
        raise UsageError("--data FILE is required")
    if backend not in BACKENDS:
        raise UsageError(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if equivalence not in tuple(EquivalenceMode):
        raise UsageError(f"--equivalence must be math or exact, got {equivalence!r}")
    if not 0 < grading_budget < float("inf"):  # NaN fails both comparisons
        raise UsageError(f"--grading-budget must be a positive number of seconds, got {grading_budget}")
    if schedule not in ("continuous", "barrier"):
        raise UsageError(f"--schedule must be continuous or barrier, got {schedule!r}")
    if not dry_run and out is None:
        raise UsageError("--out DIR is required (or use --dry-run)")
    if resume and overwrite:
        raise UsageError("--resume finishes the run in --out, --overwrite replaces it: give one")
    if target is not None and not Path(target).exists() and target.endswith((".json", ".yaml", ".yml")):
        raise InputFileError(f"no such spec or plan file: {target}")
    if models is not None and str(models).endswith((".yaml", ".yml")) and not models.is_file():
        raise InputFileError(f"no such model registry: {models}")
    if backend == "replay" and not dry_run:
        if bank is None:
            raise UsageError("--backend replay needs --bank FILE")
        from cascadec.runtime.backends.replay import bank_path

        if not bank_path(bank).is_file():
            raise InputFileError(f"no such sample bank (a parquet file or a bank directory): {bank}")

    from cascadec.api import execute, prepare
    from cascadec.runtime.data import read_table
    from cascadec.runtime.rundir import check_out_dir

    inputs = [data, bank, models, endpoints, target if target is not None and Path(target).exists() else None]
    if out is not None and not dry_run:
        check_out_dir(out, inputs, resume=resume)  # fail before reading anything big
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.runtime.progress import make_reporter, summary_tables

    frame = read_table(data)
    if limit is not None:
        frame = frame.head(limit)
    if dry_run and len(frame) > MAX_DRY_RUN_ROWS:  # a check, not a run: bounded before the work
        raise UsageError(
            f"--dry-run checks and routes at most {MAX_DRY_RUN_ROWS:,} rows; {data} has {len(frame):,}: "
            f"pass --limit {MAX_DRY_RUN_ROWS} to dry-run the first ones (a run checks every row before it starts)"
        )
    prepared = prepare(
        marker if marker is not None else target,
        frame,
        strategy_column=column,
        registry=models,
        source=str(data),
    )
    for d in prepared.diagnostics:
        sys.stderr.write(d.format() + "\n")
    if dry_run:
        _print_routing(prepared)
        return
    if backend == "replay":
        options = {"bank": bank}
    elif backend == "openai":
        options = {} if endpoints is None else _endpoint_options(endpoints)
    elif backend == "ray":
        options = {"address": ray_address, "replicas": replicas}
    else:
        options = {"log_dir": out / "logs"}  # vllm: worker logs
    engine = None
    if backend == "replay":  # every problem's first tier is in the bank: checked before anything runs
        from cascadec.runtime.backends.replay import require_first_tiers

        engine = make_backend(backend, **options)
        require_first_tiers(engine.bank, prepared, str(bank))
    if overwrite:  # only once everything is checked: a bad invocation never costs the old run
        from cascadec.runtime.overwrite import replace_run

        replace_run(out)
    engine = engine or make_backend(backend, **options)
    problems, _samples, executor, _store = execute(
        prepared,
        engine,
        out=out,
        resume=resume,
        equivalence=Equivalence(equivalence, budget=grading_budget),
        batch_size=batch_size,
        schedule=schedule,
        reporter=make_reporter(progress),
        meta={"data_source": str(data), "limit": limit, "column": column},
        inputs=inputs,
    )
    console = _stdout_console()
    for table in summary_tables(problems, executor.model_stats()):
        console.print(table)
    console.print(
        f"results: {out}/problems.parquet, {out}/samples.parquet, {out}/manifest.json",
        markup=False,
        highlight=False,
    )


def _endpoint_options(endpoints: str) -> dict:
    """``--endpoints``: a base URL serves every model; anything else is an endpoints.json."""
    if endpoints.startswith(("http://", "https://")):
        return {"base_url": endpoints}
    if not Path(endpoints).is_file():
        raise InputFileError(f"no such endpoints file: {endpoints}")
    return {"endpoints": endpoints}


def _stdout_console():
    """Tables for a terminal fit it; piped into a file or a log they are not squeezed to 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _print_routing(prepared) -> None:
    from rich.table import Table

    from cascadec.runtime.routing import breakdown

    console = _stdout_console()
    console.print(
        f"plan {prepared.plan.hash} · {len(prepared.problems)} problems · no model loaded (dry run)",
        markup=False,
        highlight=False,
    )
    for title, df in breakdown(prepared).items():
        caption = {"tiers": "tiers (worst case: every escalation, retry and exploration)"}
        table = Table(title=caption.get(title, title), title_justify="left")
        for col in df.columns:
            table.add_column(
                str(col), justify="right" if df[col].dtype.kind in "if" else "left", overflow="fold"
            )
        for row in df.itertuples(index=False):
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)


def _main() -> None:
    """``python -m cascadec.cli_run run ...`` (the same command without the rest of the CLI)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

    @app.callback()
    def _root() -> None:
        """cascadec run"""

    register(app)
    app()


if __name__ == "__main__":
    _main()
