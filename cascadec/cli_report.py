"""``cascadec report``: Markdown and PNG plots from runs and simulations, against the baselines.

Errors are one message and an exit code (1 bad content, 2 usage or I/O), never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.cli_evidence import guarded
from cascadec.core.policies import EquivalenceMode
from cascadec.errors import UsageError


def bank_inputs(
    bank: Path, data: Path, models: str | None, runs: list[Path], equivalence: str, limit: int | None
):
    """The bank, its problems and the plan its baselines price models by: ``--models``, else the
    bank directory's plan.json, else the first run's."""
    from cascadec.errors import PlanError
    from cascadec.plan import load_plan
    from cascadec.report.build import BankInputs
    from cascadec.runtime.data import problems_from_frame, read_table
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.runtime.rundir import PLAN_NAME
    from cascadec.sim.bank import bank_plan, load_bank
    from cascadec.sim.baselines import compute_baselines

    if models is not None:
        plan = bank_plan(models, 2, [0.7], source="report")
    else:
        found = [p / PLAN_NAME for p in [bank, *runs] if (p / PLAN_NAME).is_file()]
        if not found:
            raise UsageError(
                "--bank is a parquet file and no run directory has a plan.json: name the models with "
                "--models REGISTRY (zoo, qwen2.5-math or a YAML path)"
            )
        try:
            plan = load_plan(found[0])
        except PlanError as exc:
            raise PlanError(
                f"{exc.message}; name the bank's models with --models REGISTRY instead", where=exc.where
            ) from None
    frame = read_table(data)
    if limit is not None:
        frame = frame.head(limit)
    problems = problems_from_frame(frame, source=str(data))
    samples = load_bank(bank)
    eq = Equivalence(equivalence)
    base = compute_baselines(plan, samples, problems, equivalence=eq)
    return BankInputs(plan, samples, problems, str(bank), eq, base)


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        inputs: Annotated[
            list[Path],
            typer.Argument(
                metavar="RUN|SIM...", help="Run directories and/or `cascadec simulate --json` files."
            ),
        ],
        out: Annotated[Path, typer.Option("--out", help="Directory for report.md and its PNG plots.")],
        bank: Annotated[
            Path | None,
            typer.Option(
                "--bank", help="Sample bank (parquet or directory): baselines, oracle, reliability."
            ),
        ] = None,
        data: Annotated[
            Path | None, typer.Option("--data", help="Problems with gold answers (needed with --bank).")
        ] = None,
        models: Annotated[
            str | None,
            typer.Option(
                "--models", help="Registry pricing the bank's models (default: the bank's plan.json)."
            ),
        ] = None,
        equivalence: Annotated[str, typer.Option("--equivalence", help="math (as run) or exact.")] = "math",
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Only the first N problems of --data.")
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an earlier report in --out.")
        ] = False,
        target: Annotated[
            list[str] | None,
            typer.Option(
                "--target",
                help="Shade this target on the accuracy-cost plot, as calibrate takes it (repeatable): "
                '"accuracy >= largest - 0.5 pt", "cost <= 0.4x" (largest, or a strategy/baseline name).',
            ),
        ] = None,
    ) -> None:
        """Write DIR/report.md with PNG plots: accuracy against cost with the Pareto frontier, tier
        flow, reliability diagrams of the confidence signals, paired significance tests; with
        --bank, every strategy beside each model's greedy and vote@k baselines and the oracle router."""

        def go():
            from cascadec.report.build import build_report, check_out

            if equivalence not in tuple(EquivalenceMode):
                raise UsageError(f"--equivalence must be math or exact, got {equivalence!r}")
            if (bank is None) != (data is None):
                raise UsageError(
                    "--bank and --data go together (the baselines need the problems' gold answers)"
                )
            check_out(out, overwrite)  # before any slow work
            if target:  # a bad phrase before any slow work too
                from cascadec.sim.targets import parse_targets

                parse_targets(list(target))
            runs = [p for p in inputs if p.is_dir()]
            ctx = None if bank is None else bank_inputs(bank, data, models, runs, equivalence, limit)
            goal = None
            if target:
                from cascadec.sim.targets import parse_targets

                goal = parse_targets(list(target))
            path = build_report(inputs, out, ctx, overwrite=overwrite, target=goal)
            sys.stdout.write(f"wrote {path}\n")

        guarded(go)
