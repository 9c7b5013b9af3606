"""``cascadec calibrate``: search a space on a bank, certify, write the chosen spec.

Errors are one message and an exit code by the one rule (``cascadec.errors.exit_code``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.cli_evidence import console, fail, guarded, print_frame
from cascadec.errors import CascadecError
from cascadec.limits import check_output_file, write_output
from cascadec.outputs import file_lock
from cascadec.sim.certificate import CALIBRATED_HEAD, CERT_KEYS, write_spec


def reference_strategy(plan, spec_ref: str | None, models: str | None):
    """The strategy the target is relative to: a named spec/marker, else the plan's largest model greedy."""
    if spec_ref is not None:
        from cascadec.api import resolve_plan

        ref_plan, _ = resolve_plan(spec_ref, registry=models)
        return ref_plan.strategies[0], ref_plan
    base = plan.strategies[0]
    largest = max(base.tiers, key=lambda t: plan.models[t.model].params)
    tier = largest.model_copy(
        update={"k": 1, "temperature": 0.0, "escalate_if": None, "retry": None, "explore": None}
    )
    label = f"{largest.alias or largest.model} greedy"
    strategy = base.model_copy(
        update={
            "key": label,
            "tiers": (tier,),
            "early_stop": None,
            "budget": None,
            "adaptive_k": None,
            "final_answer": "last_tier",
        }
    )
    return strategy, plan


def _bound(value: float | None) -> str:
    return "inf (too few problems)" if value is None else f"{value:.4f}x"


def load_search(space_path: Path, bank: Path, data: Path, equivalence: str, limit: int | None):
    from cascadec.runtime.data import problems_from_frame, read_table
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.bank import load_bank
    from cascadec.sim.space import compile_base, expand, load_space

    if equivalence not in ("math", "exact"):
        raise fail(f"--equivalence must be math or exact, got {equivalence!r}")
    base, space = load_space(space_path)
    plan = compile_base(base, space_path)
    candidates = expand(base, space, plan)
    frame = read_table(data)
    if limit is not None:
        frame = frame.head(limit)
    adaptive = {c.strategy.adaptive_k.column for c in candidates if c.strategy.adaptive_k}
    problems = problems_from_frame(frame, feature_columns=adaptive, source=str(data))
    return base, plan, candidates, problems, load_bank(bank), Equivalence(equivalence)


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate_command(
        space: Annotated[Path, typer.Argument(metavar="SPACE", help="Cascade spec with a search: section.")],
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
    ) -> None:
        """Choose the cheapest cascade of a search space that meets an accuracy (and cost) target, certified on held-out problems."""

        def go():
            from cascadec.compiler import compile_spec
            from cascadec.sim.bank import bank_hash
            from cascadec.sim.calibrate import calibrate
            from cascadec.sim.space import rebase_paths
            from cascadec.sim.targets import parse_targets

            inputs = (space, bank, data, reference if reference and Path(reference).exists() else None)

            def check_out() -> None:
                # --overwrite replaces an earlier calibrated spec, never an input or a user's file
                if os.path.lexists(out) and not overwrite:
                    raise CascadecError("exists; pass --overwrite to replace it", code="E901", where=out)
                check_output_file(out, inputs, prefix=CALIBRATED_HEAD)

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
                raise fail(f"--target names {named!r} but --reference is {reference!r}")
            base, plan, candidates, problems, frame, eq = load_search(space, bank, data, equivalence, limit)
            ref, _ = reference_strategy(plan, reference or named, None)
            sys.stderr.write(f"calibrate: {len(candidates)} candidates × {len(problems)} problems\n")
            result = calibrate(
                [c.strategy for c in candidates],
                ref,
                plan,
                frame,
                problems,
                target,
                fraction=fraction,
                seed=split_seed,
                equivalence=eq,
            )
            cert = result.certificate(bank_hash(bank), split_seed, fraction)
            spec = rebase_paths(dict(candidates[result.chosen].spec), space, out.parent)
            spec["name"] = name or out.stem.replace(" ", "_")
            with file_lock(out):  # of two calibrates to one --out, the second waits, then refuses
                check_out()
                write_spec(spec, cert, out)
            compile_spec(out)  # the written spec compiles (raises a located error otherwise)
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
                f"wrote {out}",
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
