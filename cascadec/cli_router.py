"""``cascadec router train`` / ``cascadec router info``: learned routing's artifact.

Errors are one message and an exit code by the one rule (``cascadec.errors.exit_code``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.cli_evidence import guarded, print_frame
from cascadec.core.policies import EquivalenceMode
from cascadec.errors import CascadecError, UsageError

router_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, no_args_is_help=True
)


def bank_plan(bank: Path, models: str | None):
    """The plan pricing the bank's models: ``--models``, else the bank directory's plan.json."""
    from cascadec.errors import PlanError
    from cascadec.plan import load_plan
    from cascadec.runtime.rundir import PLAN_NAME
    from cascadec.sim.bank import bank_plan as build_bank_plan

    if models is not None:
        return build_bank_plan(models, 2, [0.7], source="router")
    found = bank / PLAN_NAME
    if not found.is_file():
        raise UsageError(
            "--bank is a parquet file without its run directory's plan.json: name the models with "
            "--models REGISTRY (zoo, qwen2.5-math or a YAML path)"
        )
    try:
        return load_plan(found)
    except PlanError as exc:
        raise PlanError(
            f"{exc.message}; name the bank's models with --models REGISTRY instead", where=exc.where
        ) from None


def check_router_out(out: Path, inputs: tuple, overwrite: bool) -> None:
    """Never over an input, a link, a folder cascadec owns or a file that is not a router."""
    from cascadec.outputs import refuse_link_or_owned
    from cascadec.router.model import load_router

    refuse_link_or_owned(out)
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise CascadecError("exists; pass --overwrite to replace it", code="E901", where=out)
    for item in inputs:
        if item is not None and Path(item).exists() and os.path.samefile(item, out):
            raise CascadecError("the output would replace this command's own input", code="E901", where=out)
    try:
        load_router(out)
    except CascadecError:
        raise CascadecError(
            "output file exists and is not a cascadec router; choose another path or remove it",
            code="E901",
            where=out,
        ) from None


def head_rows(router) -> list[dict]:
    rows = []
    for h in router.heads:
        m = h.metrics
        rows.append(
            {
                "head": h.name,
                "problems": h.n,
                "right": round(h.positives / h.n, 4) if h.n else None,
                "auroc": m.get("auroc"),
                "ece": m.get("ece"),
                "brier": m.get("brier"),
            }
        )
    return rows


@router_app.command("train")
def router_train(
    bank: Annotated[Path, typer.Option("--bank", help="Sample bank parquet or directory.")],
    data: Annotated[
        Path, typer.Option("--data", help="Problems with gold answers (.jsonl, .csv, .parquet).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Router artifact to write (.npz).")],
    models: Annotated[
        str | None, typer.Option("--models", help="Registry of the bank's models (default: its plan.json).")
    ] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--column", help="Numeric data column the router may read, repeatable (default: text only)."
        ),
    ] = None,
    ks: Annotated[
        str | None,
        typer.Option(
            "--k", help="Vote sizes to estimate, comma-separated (default 2, 4, … up to the bank's)."
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, max=50, help="Cross-fitting folds.")] = 5,
    c: Annotated[float, typer.Option("--C", min=1e-6, max=1e6, help="Inverse L2 strength.")] = 1.0,
    bits: Annotated[int, typer.Option("--bits", min=8, max=24, help="Hashed feature columns: 2^bits.")] = 18,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fold assignment.")] = 0,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, max=64, help="Fit on N processes (1: bit-reproducible, default).")
    ] = 1,
    equivalence: Annotated[str, typer.Option("--equivalence", help="math (as run) or exact.")] = "math",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N problems.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier router at --out.")
    ] = False,
) -> None:
    """Train a router: per model (and k) P(right | problem) from the text, cross-fitted, saved without pickle."""

    def go():
        from cascadec.router.model import save_router
        from cascadec.runtime.data import problems_from_frame, read_table
        from cascadec.runtime.equivalence import Equivalence
        from cascadec.sim.bank import bank_hash, load_bank
        from cascadec.sim.router_fit import fit_router

        if equivalence not in tuple(EquivalenceMode):
            raise UsageError(f"--equivalence must be math or exact, got {equivalence!r}")
        inputs = (bank, data, models if models and Path(models).exists() else None)
        check_router_out(out, inputs, overwrite)
        plan = bank_plan(bank, models)
        frame = read_table(data)
        if limit is not None:
            frame = frame.head(limit)
        cols = list(dict.fromkeys(columns or []))
        missing = [col for col in cols if col not in frame.columns]
        if missing:
            raise UsageError(f"--column {', '.join(missing)}: not in {data}")
        problems = problems_from_frame(frame, feature_columns=cols, source=str(data))
        k_list = None
        if ks is not None:
            try:
                k_list = sorted({int(x) for x in ks.split(",") if x.strip()})
            except ValueError:
                raise UsageError(f"--k must be comma-separated integers, got {ks!r}") from None
        trained = fit_router(
            plan,
            load_bank(bank),
            problems,
            equivalence=Equivalence(equivalence),
            columns=cols,
            ks=k_list,
            folds=folds,
            C=c,
            seed=seed,
            bits=bits,
            training={"bank_hash": bank_hash(bank), "data": Path(data).name},
            jobs=jobs,
        )
        check_router_out(out, inputs, overwrite)
        router = save_router(trained.router, out)
        print_frame(
            head_rows(router), f"router {out}: {len(problems)} problems, cross-fitted ({folds} folds)"
        )
        sys.stderr.write(f"router: {router.hash} in {trained.seconds:.1f}s\n")

    guarded(go)


@router_app.command("info")
def router_info(
    router_path: Annotated[Path, typer.Argument(metavar="ROUTER", help="Router artifact (.npz).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
    bins: Annotated[bool, typer.Option("--bins", help="Also print each head's reliability bins.")] = False,
) -> None:
    """A router's models, training size, held-out (cross-fitted) AUROC and calibration per model."""

    def go():
        from cascadec.router.model import load_router

        router = load_router(router_path)
        if json_out:
            body = {**router.meta(), "hash": router.hash, "nonzero_features": int(router.features.size)}
            sys.stdout.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
            return
        t = router.training
        v = router.vectoriser
        print(f"router {router_path}")
        print(f"  hash      {router.hash}")
        print(f"  models    {', '.join(router.models)}")
        print(f"  training  {t.get('problems')} problems, {t.get('folds')} folds, {t.get('learner')}")
        print(
            f"  features  2^{v.bits} hashed (char {v.char_ngrams}, shape {v.shape_ngrams}, "
            f"word {v.word_ngrams}, numbers), {router.features.size} non-zero"
            + (f"; columns {', '.join(v.numeric)}" if v.numeric else "; text only")
        )
        print_frame(head_rows(router), "heads (held-out = cross-fitted predictions)")
        if bins:
            for h in router.heads:
                rows = [
                    {k: b.get(k) for k in ("lo", "hi", "n", "p", "right")} for b in h.metrics.get("bins", [])
                ]
                print_frame(
                    rows, f"reliability of {h.name} (cross-fitted: mean P(right) and share right per bin)"
                )

    guarded(go)


def register(app: typer.Typer) -> None:
    app.add_typer(router_app, name="router", help="Learned routing: train a router on a bank, inspect one.")
