"""``cascadec calibrate``: search a space on a bank, certify, write the chosen spec.

Errors are one message and an exit code by the one rule (``cascadec.errors.exit_code``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from cascadec.cli_evidence import console, guarded, print_frame
from cascadec.cli_router import check_router_out
from cascadec.errors import CascadecError, UsageError
from cascadec.limits import check_output_file, write_output
from cascadec.outputs import file_lock
from cascadec.sim.certificate import CALIBRATED_HEAD, CERT_KEYS, write_spec


def pick_space(positional: Path | None, option: Path | None) -> Path:
    """The search space, as ``SPACE`` or ``--space SPACE`` (both commands take both spellings)."""
    if positional is None and option is None:
        raise UsageError("give the search space: SPACE or --space SPACE")
    if positional is not None and option is not None and positional != option:
        raise UsageError(f"two search spaces given: {positional} and --space {option}")
    return positional if positional is not None else option  # type: ignore[return-value]


def _bound(value: float | None) -> str:
    return "inf (too few problems)" if value is None else f"{value:.4f}x"


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate_command(
        bank: Annotated[Path, typer.Option("--bank", help="Sample bank parquet or directory.")],
        data: Annotated[Path, typer.Option("--data", help="Problems with gold answers.")],
        out: Annotated[Path, typer.Option("--out", help="Where to write the calibrated spec (.yaml).")],
        targets: Annotated[
            list[str] | None,
            typer.Option(
                "--target",
                help='Target phrase, repeatable: "accuracy >= largest - 0.5 pt with 95% confidence", '
                '"cost <= 0.4x" (largest, or a spec/marker name). Default: within 1 point of the largest.',
            ),
        ] = None,
        max_loss: Annotated[
            float | None,
            typer.Option(
                "--max-loss",
                min=0.0,
                max=100.0,
                help="Accuracy points the cascade may lose vs the reference (default 1 without --target).",
            ),
        ] = None,
        confidence: Annotated[
            float | None,
            typer.Option(
                "--confidence", min=0.5, max=0.9999, help="1 − delta of the guarantee (default 0.95)."
            ),
        ] = None,
        max_cost_ratio: Annotated[
            float | None,
            typer.Option(
                "--max-cost-ratio",
                min=0.0,
                help="Certified cap on the mean cost: at most this × the reference's (same as a cost --target).",
            ),
        ] = None,
        reference: Annotated[
            str | None,
            typer.Option("--reference", help="Spec or marker to match (default: the largest model, greedy)."),
        ] = None,
        fraction: Annotated[
            float,
            typer.Option(
                "--calibration-fraction", min=0.05, max=0.95, help="Share of problems used to choose."
            ),
        ] = 0.5,
        split_seed: Annotated[
            int, typer.Option("--split-seed", help="Seed of the calibration/held-out split.")
        ] = 0,
        equivalence: Annotated[str, typer.Option("--equivalence", help="math (as run) or exact.")] = "math",
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Only the first N problems.")
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an existing --out file.")
        ] = False,
        json_out: Annotated[
            Path | None, typer.Option("--json", help="Also write the certificate as JSON here.")
        ] = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Strategy name of the written spec (default: --out's stem)."),
        ] = None,
        ledger: Annotated[
            Path | None,
            typer.Option(
                "--ledger",
                help="Calibration ledger (every look at the bank's held-out problems; "
                "default: BANK.calibrations.jsonl beside the bank).",
            ),
        ] = None,
        space_arg: Annotated[
            Path | None,
            typer.Argument(
                metavar="SPACE", help="Cascade spec with a search: section (or --space).", show_default=False
            ),
        ] = None,
        space_opt: Annotated[
            Path | None, typer.Option("--space", help="The search space (same as SPACE, as in optimize).")
        ] = None,
    ) -> None:
        """Choose the cheapest cascade of a search space that meets an accuracy (and cost) target, certified on held-out problems."""

        def go():
            space = pick_space(space_arg, space_opt)
            from cascadec.sim.bank import bank_hash
            from cascadec.sim.calibrate import CalibrationError, calibrate
            from cascadec.sim.ledger import ledger_path, problems_hash, read_looks, record_look, space_hash
            from cascadec.sim.routed import (
                problems_with_columns,
                route_columns,
                route_search,
                routes_asked,
                with_search,
            )
            from cascadec.sim.search import check_equivalence, load_search, search_notes
            from cascadec.sim.space import written_spec
            from cascadec.sim.targets import parse_targets

            inputs = (space, bank, data, reference if reference and Path(reference).exists() else None)

            def check_out() -> None:
                # --overwrite replaces an earlier calibrated spec, never an input or a user's file
                if os.path.lexists(out) and not overwrite:
                    raise CascadecError("exists; pass --overwrite to replace it", code="E901", where=out)
                check_output_file(out, inputs, prefix=CALIBRATED_HEAD)

            check_equivalence(equivalence)
            check_out()  # before the work; again under the lock before writing
            if json_out is not None:
                if os.path.lexists(json_out) and not overwrite:
                    raise CascadecError("exists; pass --overwrite to replace it", code="E901", where=json_out)
                check_output_file(json_out, (*inputs, out), replaceable=CERT_KEYS)
            target, named = parse_targets(
                targets or [],
                max_loss=None if max_loss is None else max_loss / 100,
                max_cost_ratio=max_cost_ratio,
                confidence=confidence,
            )
            if named is not None and reference is not None and named != reference:
                raise UsageError(f"--target names {named!r} but --reference is {reference!r}")

            # a line per stage on stderr, terminal or not: a calibrate can take a minute
            t0 = time.perf_counter()
            sys.stderr.write(f"calibrate: reading the bank and the problems ({bank}, {data})\n")
            search = load_search(space, bank, data, equivalence, limit, reference or named)
            for line in search_notes(search, data):  # an answer format the bank lacks; uncovered problems
                sys.stderr.write(line + "\n")
            router_out = None
            if routes_asked(search.space):  # learned routes: a router trained on the calibration split
                router_out = out.with_name(f"{out.stem}.router.npz")
                check_router_out(router_out, inputs, overwrite)
                routed = route_search(
                    search,
                    fraction=fraction,
                    seed=split_seed,
                    router_out=router_out,
                    problems=problems_with_columns(search, data, limit, route_columns(search.space)),
                )
                search = with_search(search, routed)
                sys.stderr.write(
                    f"calibrate: router {routed.router.hash} → {router_out} ({routed.seconds:.1f}s)\n"
                )
            if search.candidates.rejected:
                sys.stderr.write(f"calibrate: {search.candidates.summary()}\n")
            sys.stderr.write(
                f"calibrate: {len(search.candidates)} candidates × {len(search.problems)} problems "
                f"(read and graded in {time.perf_counter() - t0:.1f}s); choosing on the calibration "
                "split, then testing on the held-out problems\n"
            )
            bank_id = bank_hash(bank)
            ledger_file = ledger if ledger is not None else ledger_path(bank)
            looks = read_looks(ledger_file, bank_id, target.delta)
            if looks.warning():
                sys.stderr.write(f"warning: {looks.warning()}\n")
            look = {
                "bank": str(bank),
                "bank_hash": bank_id,
                "problems": len(search.problems),
                "problems_hash": problems_hash([p.id for p in search.problems]),
                "space": str(space),
                "space_hash": space_hash(space),
                "target": target.describe(search.reference.key),
                "delta": target.delta,
                "reference": search.reference.key,
                "split_seed": split_seed,
                "calibration_fraction": fraction,
            }
            try:
                result = calibrate(
                    search.strategies,
                    search.reference,
                    search.plan,
                    search.bank,
                    search.problems,
                    target,
                    fraction=fraction,
                    seed=split_seed,
                    equivalence=search.equivalence,
                )
                sys.stderr.write(f"calibrate: chosen and tested in {time.perf_counter() - t0:.1f}s in all\n")
            except CalibrationError as exc:
                looked = exc.report.get("stage") == "held_out"
                record_look(ledger_file, {**look, "outcome": exc.code, "held_out_looked": looked})
                if json_out is not None:  # the diagnosis, written on E700 too
                    report = {
                        "outcome": exc.code,
                        "message": exc.message,
                        "target": look["target"],
                        "max_loss": target.max_loss,
                        "max_cost_ratio": target.max_cost_ratio,
                        "delta": target.delta,
                        "reference": look["reference"],
                        "split": {"seed": split_seed, "calibration_fraction": fraction},
                        "bank_hash": bank_id,
                        "looks": looks.certificate(this_one=looked),
                        **{k: v for k, v in exc.report.items() if k != "closest"},
                        "closest": [
                            {"key": search.candidates[c["candidate"]].strategy.key, **c}
                            for c in exc.report.get("closest", [])
                        ],
                    }
                    write_output(
                        json_out,
                        json.dumps(report, indent=2) + "\n",
                        (*inputs, out),
                        replaceable=CERT_KEYS,
                        overwrite=overwrite,
                    )
                    sys.stderr.write(f"calibrate: wrote the diagnosis to {json_out}\n")
                raise
            record_look(
                ledger_file,
                {
                    **look,
                    "outcome": "certified",
                    "held_out_looked": True,
                    "chosen": search.candidates[result.chosen].strategy.key,
                },
            )
            cert = result.certificate(bank_id, split_seed, fraction)
            cert["looks"] = looks.certificate()
            chosen = search.candidates[result.chosen]
            spec = written_spec(chosen, space, out.parent, name or out.stem.replace(" ", "_"))
            with file_lock(out):  # of two calibrates to one --out, the second waits, then refuses
                check_out()
                write_spec(spec, cert, out)
            h = result.held_out
            print_frame(
                [
                    {
                        "split": "calibration",
                        "problems": result.calibration_size,
                        "accuracy": result.calibration["accuracy"],
                        "reference": result.calibration["reference_accuracy"],
                        "cost_ratio": result.calibration["cost_ratio"],
                    },
                    {
                        "split": "held-out",
                        "problems": result.held_out_size,
                        "accuracy": h["accuracy"],
                        "reference": h["reference_accuracy"],
                        "cost_ratio": h["cost_ratio"],
                    },
                ],
                f"calibrated: {cert['target']}",
            )
            console().print(
                f"certified {len(result.certified)} of {len(result.pvalues)} tested (sequence of {len(result.sequence)}); "
                f"held-out loss rate <= {h['loss_upper_bound']:.4f}, mean cost ratio <= "
                f"{_bound(h['cost_ratio_upper_bound'])} ({100 * (1 - target.delta):g}%); "
                f"accuracy diff 95% CI {h['accuracy_diff_ci95']}, cost ratio 95% CI {h['cost_ratio_ci95']}\n"
                f"held-out problems looked at {looks.count} time(s) (ledger {ledger_file})"
                + (
                    f": confidence >= {100 * (1 - looks.family_delta):.4g}% by Bonferroni over the looks"
                    if looks.count > 1
                    else ""
                )
                + f"\nwrote {out}",
                markup=False,
                highlight=False,
            )
            if json_out is not None:
                write_output(
                    json_out,
                    json.dumps(cert, indent=2) + "\n",
                    (*inputs, out),
                    replaceable=CERT_KEYS,
                    overwrite=overwrite,
                )

        guarded(go)
