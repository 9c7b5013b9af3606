"""``cascadec optimize``: the Pareto frontier of a search space, with each point's spec.

Writes into ``--out DIR``: ``point-NN.yaml`` (a spec that compiles, its held-out figures in
comment lines), ``frontier.json`` and ``frontier.md``; ``--json OUT`` writes the JSON alone.
Nothing is replaced without ``--overwrite``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.cli_evidence import console, fmt_value, guarded, print_frame
from cascadec.limits import check_output_file, write_output

POINT_HEAD = "# A Pareto point written by `cascadec optimize`"  # how an earlier output is recognised
MD_HEAD = "# Pareto frontier of "
_KIND = {
    ".json": {"replaceable": ("frontier",)},
    ".md": {"prefix": MD_HEAD},
    ".yaml": {"prefix": POINT_HEAD},
}
MD_COLUMNS = ("point", "accuracy", "accuracy_ci95", "cost_ratio", "cost_ratio_ci95", "samples_per_problem")


def _fmt(v) -> str:
    return fmt_value(v, sep="–")  # an interval lo–hi in Markdown


def markdown(body: dict) -> str:
    """The frontier (held-out figures) and the baselines as Markdown tables."""
    lines = [
        f"{MD_HEAD}{body['space']}",
        "",
        f"{body['evaluated']} of {body['candidates']} candidates evaluated on {body['calibration_problems']} "
        f"calibration problems; figures below are on {body['held_out_problems']} held-out problems "
        f"(paired-bootstrap 95% intervals), cost relative to {body['reference']}.",
        "",
    ]
    if body.get("rejected"):
        shown = "; ".join(body["rejected"][:3]) + ("; ..." if len(body["rejected"]) > 3 else "")
        lines += [f"{len(body['rejected'])} more rejected by the compiler, never simulated: {shown}", ""]
    lines += [
        "| " + " | ".join((*MD_COLUMNS, "spec")) + " |",
        "|" + "---|" * (len(MD_COLUMNS) + 1),
    ]
    for row in body["frontier"]:
        flag = " (dominated on held-out)" if row["dominated_on_held_out"] else ""
        lines.append("| " + " | ".join(_fmt(row[c]) for c in MD_COLUMNS) + f" | {row['spec']}{flag} |")
    if body.get("baselines"):
        lines += [
            "",
            "## Baselines and oracle (held-out)",
            "",
            "| name | accuracy | cost_ratio |",
            "|---|---|---|",
        ]
        lines += [
            f"| {b['name']} | {_fmt(b['accuracy'])} | {_fmt(b['cost_ratio'])} |" for b in body["baselines"]
        ]
    return "\n".join(lines) + "\n"


def _spec_text(spec: dict, row: dict, reference: str) -> str:
    import yaml

    head = [
        POINT_HEAD + ".",
        f"# Held-out: accuracy {row['accuracy']:.4f} (95% CI {_fmt(row['accuracy_ci95'])}), cost "
        f"{_fmt(row['cost_ratio'])}x {reference} (95% CI {_fmt(row['cost_ratio_ci95'])}).",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def _baselines(plan, bank_frame, problems, eq) -> list[dict]:
    from cascadec.errors import DataError
    from cascadec.sim.baselines import compute_baselines

    try:
        rows = compute_baselines(plan, bank_frame, problems, equivalence=eq).rows()
    except DataError:
        return []
    return [{k: r[k] for k in ("name", "accuracy", "cost_ratio")} for r in rows]


def _progress(enabled: bool | None):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not (err.is_terminal if enabled is None else enabled):
        return None, None
    bar = Progress(
        TextColumn("candidates"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )
    task = bar.add_task("candidates", total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def optimize_command(
    bank: Annotated[Path, typer.Option("--bank", help="Sample bank parquet or directory.")],
    data: Annotated[Path, typer.Option("--data", help="Problems with gold answers.")],
    budget: Annotated[
        int | None, typer.Option("--budget", min=1, help="Evaluate at most N candidates (a seeded sample).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for point-NN.yaml specs, frontier.json and frontier.md."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the frontier as JSON here.")] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Spec or marker costs are relative to (default: largest greedy)."),
    ] = None,
    fraction: Annotated[
        float,
        typer.Option("--calibration-fraction", min=0.05, max=0.95, help="Share of problems used to choose."),
    ] = 0.5,
    split_seed: Annotated[
        int, typer.Option("--split-seed", help="Seed of the split and of --budget's sample.")
    ] = 0,
    equivalence: Annotated[str, typer.Option("--equivalence", help="math (as run) or exact.")] = "math",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N problems.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bar.")] = None,
    space_opt: Annotated[
        Path | None, typer.Option("--space", help="Cascade spec with a search: section (or SPACE).")
    ] = None,
    space_arg: Annotated[
        Path | None,
        typer.Argument(
            metavar="SPACE", help="The search space (same as --space, as in calibrate).", show_default=False
        ),
    ] = None,
) -> None:
    """Pareto frontier (cost vs accuracy) of a search space: chosen on a calibration split, reported held-out."""

    def go():
        from cascadec.cli_calibrate import pick_space
        from cascadec.cli_router import check_router_out
        from cascadec.errors import CascadecError, RunDirError

        space = pick_space(space_arg, space_opt)
        from cascadec.outputs import OPTIMIZE, OwnedDir, refuse_foreign, survey
        from cascadec.sim.bank import bank_hash
        from cascadec.sim.calibrate import split
        from cascadec.sim.optimize import optimize
        from cascadec.sim.routed import (
            problems_with_columns,
            route_columns,
            route_search,
            routes_asked,
            with_search,
        )
        from cascadec.sim.search import check_equivalence, load_search, search_notes
        from cascadec.sim.space import written_spec

        inputs = (space, bank, data)
        check_equivalence(equivalence)
        if json_out is not None:
            if json_out.exists() and not overwrite:
                raise CascadecError("exists; pass --overwrite to replace it", code="E901", where=json_out)
            check_output_file(json_out, inputs, **_KIND[".json"])

        def check_folder() -> None:  # only optimize's own earlier files, and only with --overwrite
            s = survey(out, OPTIMIZE)
            refuse_foreign(s, OPTIMIZE, "nothing was written")
            if s.owned and not overwrite:
                raise RunDirError("already holds a frontier; pass --overwrite to replace it", where=out)

        if out is not None:
            check_folder()
        search = load_search(space, bank, data, equivalence, limit, reference)
        for line in search_notes(search, data):  # an answer format the bank lacks; uncovered problems
            sys.stderr.write(line + "\n")
        if routes_asked(search.space):  # learned routes: a router trained on the calibration split
            import tempfile

            router_out = (
                out.with_name(f"{out.name}.router.npz")
                if out is not None
                else Path(tempfile.mkdtemp(prefix="cascadec-router-")) / "router.npz"
            )
            check_router_out(router_out, inputs, overwrite)
            routed = route_search(
                search,
                fraction=fraction,
                seed=split_seed,
                router_out=router_out,
                problems=problems_with_columns(search, data, limit, route_columns(search.space)),
                spec_dir=out,
            )
            search = with_search(search, routed)
            sys.stderr.write(
                f"optimize: router {routed.router.hash} → {router_out} ({routed.seconds:.1f}s)\n"
            )
        candidates, problems, ref, eq = (
            search.candidates,
            search.problems,
            search.reference,
            search.equivalence,
        )
        if candidates.rejected:
            sys.stderr.write(f"optimize: {candidates.summary()}\n")
        sys.stderr.write(f"optimize: {len(candidates)} candidates × {len(problems)} problems\n")
        bar, tick = _progress(progress)
        try:
            if bar is not None:
                bar.start()
            result = optimize(
                search.strategies,
                ref,
                search.plan,
                search.bank,
                problems,
                budget=budget,
                fraction=fraction,
                seed=split_seed,
                equivalence=eq,
                progress=tick,
            )
        finally:
            if bar is not None:
                bar.stop()
        rows = result.rows()
        for n, (row, point) in enumerate(zip(rows, result.points, strict=True)):
            row["spec"] = f"point-{n:02d}.yaml"
            row["candidate"] = candidates[point.candidate].index  # candidate-{index} of the space
        _, hold = split(problems, fraction, split_seed)
        body = {
            "space": str(space),
            "bank_hash": bank_hash(bank),
            "reference": ref.key,
            "candidates": len(candidates),
            "rejected": [r.describe() for r in candidates.rejected],
            "evaluated": len(result.evaluated),
            "calibration_problems": result.calibration_size,
            "held_out_problems": result.held_out_size,
            "split": {"seed": split_seed, "calibration_fraction": fraction},
            "reference_figures": result.reference_figures,
            "frontier": rows,
            "baselines": _baselines(search.plan, search.bank, [problems[i] for i in hold], eq),
        }
        if out is not None:
            # every point compiled from where it will be written before anything is written
            texts = [
                _spec_text(
                    written_spec(candidates[point.candidate], space, out, f"frontier_{n:02d}"), row, ref.key
                ).encode("utf-8")
                for n, (row, point) in enumerate(zip(rows, result.points, strict=True))
            ]
            with OwnedDir(out, OPTIMIZE, "nothing was written") as folder:  # locked and recorded
                check_folder()  # again, under the lock
                for old in sorted(folder.files):
                    if old.startswith("point-"):
                        folder.remove(old)  # earlier points: a shorter frontier leaves none behind
                written = []
                try:
                    for row, text in zip(rows, texts, strict=True):
                        written.append(row["spec"])
                        folder.write(row["spec"], text)
                except BaseException:
                    for name in written:  # nothing half-written is left behind
                        folder.remove(name)
                    raise
                folder.write("frontier.json", (json.dumps(body, indent=2) + "\n").encode("utf-8"))
                folder.write("frontier.md", markdown(body).encode("utf-8"))
        if json_out is not None:
            write_output(
                json_out, json.dumps(body, indent=2) + "\n", inputs, overwrite=overwrite, **_KIND[".json"]
            )
        shown = [{k: r[k] for k in ("point", *MD_COLUMNS[1:], "dominated_on_held_out")} for r in rows]
        print_frame(shown, f"Pareto frontier: {len(rows)} points, held-out figures vs {ref.key}")
        if body["baselines"]:
            print_frame(body["baselines"], "baselines and oracle (held-out)")
        if out is not None:
            console().print(f"wrote {len(rows)} specs, frontier.json and frontier.md to {out}", markup=False)

    guarded(go)


def estimate_on_bank(plan, bank: Path, data: Path, equivalence: str, limit: int | None) -> dict[str, dict]:
    """What ``explain --bank`` runs (installed into cli_compile; the simulator loads only when used)."""
    from cascadec.sim.estimate import estimate_files

    return estimate_files(plan, bank, data, equivalence, limit)


def register(app: typer.Typer) -> None:
    from cascadec import cli_compile

    app.command("optimize")(optimize_command)
    if estimate_on_bank not in cli_compile.BANK_ESTIMATORS:  # explain --bank (see cli_compile)
        cli_compile.BANK_ESTIMATORS.append(estimate_on_bank)
