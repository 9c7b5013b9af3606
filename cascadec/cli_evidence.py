"""``cascadec bank build|info`` and ``cascadec simulate``: record once, replay any plan.

Errors are one message and an exit code (1 bad content, 2 usage or I/O), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.errors import CascadecError, UsageError, error_exit
from cascadec.limits import check_output_file, write_output

bank_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None, no_args_is_help=True
)


def guarded(fn):
    """Run ``fn``; an error is printed with its code and exits by the one rule (``errors.error_exit``)."""
    try:
        return fn()
    except (CascadecError, OSError) as exc:  # OSError: a file the user named (E901), not a bug
        raise error_exit(exc) from None


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(width=160, stderr=stderr)


def print_frame(rows: list[dict], title: str, *, stderr: bool = False) -> None:
    """A table on stdout (``stderr``: on stderr, when stdout carries JSON)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    if not rows:
        console(stderr).print(f"{title}: nothing", markup=False)
        return
    for col in rows[0]:
        table.add_column(
            str(col), justify="left" if col in ("strategy", "model") else "right", overflow="fold"
        )
    for r in rows:
        table.add_row(*(fmt_value(v) for v in r.values()))
    console(stderr).print(table)


def fmt_value(v, sep: str = " ") -> str:
    """One cell of an evidence table: floats to 4 significant digits, lists joined by ``sep``."""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return sep.join(fmt_value(x, sep) for x in v)
    return "-" if v is None else str(v)


def parse_floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers, got {text!r}") from None


@bank_app.command("build")
def bank_build(
    data: Annotated[Path, typer.Option("--data", help="Problems (.jsonl, .csv, .parquet).")],
    out: Annotated[
        Path, typer.Option("--out", help="Bank directory (a run directory; samples.parquet is the bank).")
    ],
    models: Annotated[
        str, typer.Option("--models", help="Model registry: zoo, qwen2.5-math or a YAML path.")
    ] = "zoo",
    k: Annotated[
        int, typer.Option("--k", min=1, max=1024, help="Samples per model, problem and temperature.")
    ] = 8,
    temperatures: Annotated[
        str, typer.Option("--temperatures", help="Comma-separated sampling temperatures.")
    ] = "0.7",
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Generated tokens per sample.")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Prompt template (default: the registry's).")
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="vllm, openai, ray or replay.")] = "vllm",
    source_bank: Annotated[Path | None, typer.Option("--bank", help="replay: the bank to copy from.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N problems.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted build in --out.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an earlier bank in --out (only files cascadec wrote)."),
    ] = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars.")] = None,
) -> None:
    """Record every model of a registry at k samples per temperature plus one greedy sample per problem."""

    def go():
        from cascadec.runtime.backends import BACKENDS, make_backend
        from cascadec.runtime.data import read_table
        from cascadec.runtime.progress import make_reporter
        from cascadec.sim.bank import build_bank, coverage, load_bank

        if backend not in BACKENDS:
            raise UsageError(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if resume and overwrite:
            raise UsageError("--resume finishes the bank in --out, --overwrite replaces it: give one")
        temps = parse_floats(temperatures, "--temperatures")
        if any(not 0 <= t <= 2 for t in temps):
            raise UsageError(f"--temperatures must be in [0, 2], got {temperatures}")
        frame = read_table(data)
        if limit is not None:
            frame = frame.head(limit)
        if backend == "replay":
            if source_bank is None:
                raise UsageError("--backend replay needs --bank")
            options = {"bank": load_bank(source_bank)}
        elif backend == "vllm":
            options = {"log_dir": out / "logs"}
        else:
            options = {}
        if overwrite:  # only once everything is checked: a bad invocation never costs the old bank
            from cascadec.runtime.overwrite import replace_run

            replace_run(out)
        path = build_bank(
            registry_ref=models,
            problems=frame,
            out=out,
            k=k,
            temperatures=temps,
            backend=make_backend(backend, **options),
            max_tokens=max_tokens,
            prompt=prompt,
            resume=resume,
            reporter=make_reporter(progress),
        )
        print_frame([c.__dict__ for c in coverage(load_bank(path))], f"bank {path}")

    guarded(go)


@bank_app.command("import")
def bank_import(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="Recorded outputs (.jsonl, .json, .csv, .parquet, .gz)."),
    ],
    data: Annotated[
        str, typer.Option("--data", help="Problems: a file or a shipped set (gsm8k, math500, ...).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Bank directory to write (samples.parquet, import.json).")
    ],
    models: Annotated[
        str | None,
        typer.Option("--models", help="Registry naming and pricing the models (default: generated)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, samples, lm-eval, openai, wide or per-model.")
    ] = "auto",
    score: Annotated[
        str | None, typer.Option("--score", help="Which score_<NAME> column is the primary score.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="The model's name (per-model and lm-eval files; overrides the file's)."),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", min=0, max=2, help="Temperature of rows that record none."),
    ] = None,
    prompt_overhead: Annotated[
        int,
        typer.Option(
            "--prompt-overhead",
            min=0,
            help="Tokens each prompt adds to the problem (few-shot prefix) where the file records none.",
        ),
    ] = 0,
    answer: Annotated[
        str,
        typer.Option(
            "--answer", help="Answer format the grader reads: boxed_or_final_line, boxed, gsm8k, choice."
        ),
    ] = "boxed_or_final_line",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier bank in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the import report as JSON.")] = False,
) -> None:
    """Import recorded outputs (any models, any source) into a bank, re-graded by cascadec's grader."""

    def go():
        from cascadec.core.answer_format import AnswerFormat
        from cascadec.sim.bank_import import import_bank

        if answer not in {f.value for f in AnswerFormat}:
            raise UsageError(
                f"--answer must be one of {', '.join(f.value for f in AnswerFormat)}, got {answer!r}"
            )
        result = import_bank(
            list(files),
            data=data,
            out=out,
            models=models,
            fmt=fmt,
            score=score,
            model=model,
            temperature=temperature,
            prompt_overhead=prompt_overhead,
            answer=answer,
            overwrite=overwrite,
        )
        report = result.report
        if as_json:
            sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
            return
        print_import_report(report, out)

    guarded(go)


def print_import_report(report: dict, out: Path) -> None:
    """The import's figures: per model, the file's verdicts against ours, what was estimated."""
    c = console()
    c.print(
        f"{out}: {report['samples']} samples of {len(report['models'])} models on "
        f"{report['problems_covered']}/{report['problems']} problems of {report['data']}",
        markup=False,
    )
    print_frame(report["models"], f"imported (graded by cascadec, answers read as {report['answer_format']})")
    agreement = report["source_agreement"]
    if agreement["verdicts"]:
        c.print(
            f"agreement with the file's own verdicts: {agreement['agreement']:.4f} on {agreement['verdicts']} "
            f"samples, {agreement['disagreements']} disagreements (all in {out}/import.json)",
            markup=False,
        )
        shown = report["disagreements"][:20]
        keys = ("id", "model", "sample", "source", "ours", "answer", "source_answer", "gold")
        print_frame([{k: d[k] for k in keys} for d in shown], f"disagreements (first {len(shown)})")
    est = report["estimation"]
    if est["completion_tokens_estimated"] or est["prompt_tokens_estimated"]:
        c.print(
            f"estimated ({est['rule']}): {est['completion_tokens_estimated']:.0%} of completion token counts, "
            f"{est['prompt_tokens_estimated']:.0%} of prompt token counts; costs resting on them are estimates too",
            markup=False,
        )
    for note in report["notes"]:
        c.print(f"note: {note}", markup=False)
    if report["registry"].endswith("(generated)"):
        sys.stderr.write(
            f"warning: {out}/models.yaml was generated; its costs are placeholders unless the file recorded "
            "costs: give real prices or params and pass it as --models\n"
        )


@bank_app.command("info")
def bank_info(
    bank: Annotated[Path, typer.Argument(help="Bank parquet or bank directory.")],
    data: Annotated[
        str | None, typer.Option("--data", help="Grade every sample against these problems' gold.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """What a bank can replay, and per model its accuracy and whether its figures are estimated."""

    def go():
        from cascadec.sim.bank import bank_hash, coverage, load_bank

        frame = load_bank(bank)
        rows = [c.__dict__ for c in coverage(frame)]
        models, graded_by = bank_models(frame, data)
        info = {
            "bank": str(bank),
            "hash": bank_hash(bank),
            "problems": int(frame["problem_id"].nunique()),
            "samples": len(frame),
            "streams": rows,
            "models": models,
            "graded_by": graded_by,
        }
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2) + "\n")
            return
        console().print(
            f"{info['bank']}: {info['problems']} problems, {info['samples']} samples, {info['hash']}",
            markup=False,
        )
        print_frame(rows, "replayable: a tier can ask up to min_k samples of (model, temperature)")
        print_frame(models, f"models (accuracy: share of samples right, graded by {graded_by})")
        estimated = [m["model"] for m in models if m.get("tokens_estimated")]
        if estimated:
            console().print(
                "estimated: token counts of "
                + ", ".join(
                    f"{m['model']} ({m['tokens_estimated']:.0%})" for m in models if m.get("tokens_estimated")
                )
                + " are ceil(characters / 4), and so are the costs resting on them",
                markup=False,
            )

    guarded(go)


def bank_models(frame, data: str | None) -> tuple[list[dict], str]:
    """Per-model figures of a bank: graded now against ``data``, else the grades import stored."""
    from cascadec.sim.import_grade import model_summary

    if data is None:
        has = "correct" in frame.columns and frame["correct"].notna().any()
        return model_summary(frame), "bank import (stored)" if has else "nothing (give --data)"
    from cascadec.runtime.data import problems_from_frame, read_table
    from cascadec.sim.import_grade import grade

    problems = {p.id: p for p in problems_from_frame(read_table(data), source=str(data))}
    part = frame[frame["problem_id"].astype(str).isin(problems)]
    finished = (
        (part["finish_reason"].fillna("stop") == "stop").to_numpy() if "finish_reason" in part else None
    )
    if finished is None:
        import numpy as np

        finished = np.ones(len(part), dtype=bool)
    _, correct = grade(part["text"].tolist(), finished, part["problem_id"].astype(str).tolist(), problems)
    return model_summary(part, correct), f"cascadec against {data}"


def reference_ratio(plan, bank_frame, problems, equivalence: str, reference: str | None, models):
    """(cost → cost / the reference's total cost on the same problems, the reference's key); the
    reference is simulated on the same bank and problems (:mod:`cascadec.sim.reference`). A bank
    that cannot replay it: a note, and no ratio."""
    from cascadec.plan import Plan, seal
    from cascadec.runtime.equivalence import Equivalence
    from cascadec.sim.reference import reference_strategy
    from cascadec.sim.simulate import simulate

    try:
        ref, ref_plan = reference_strategy(plan, reference, models)
        both = seal(Plan(models={**ref_plan.models, **plan.models}, strategies=(ref,), source="reference"))
        total = simulate(both, bank_frame, problems, equivalence=Equivalence(equivalence)).summary(0)["cost"]
    except CascadecError as exc:
        if reference is not None:
            raise
        sys.stderr.write(
            f"note: no cost ratio: the reference cannot be simulated on this bank ({exc.message})\n"
        )
        return None, None
    if not total:
        return None, ref.key
    return (lambda cost: round(cost / total, 6)), ref.key


SIMULATE_JSON_KEYS = ("plan_hash",)  # an earlier ``simulate --json`` output may be replaced


def simulate_command(
    target: Annotated[str, typer.Argument(metavar="SPEC|PLAN", help="Spec .yaml, plan .json or marker.")],
    bank: Annotated[Path, typer.Option("--bank", help="Sample bank parquet or directory.")],
    data: Annotated[Path, typer.Option("--data", help="Problems (.jsonl, .csv, .parquet).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON here (- for stdout).")
    ] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="Model registry (overrides the spec's).")
    ] = None,
    equivalence: Annotated[str, typer.Option("--equivalence", help="math (as run) or exact.")] = "math",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N problems.")] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Spec or marker the cost ratio is relative to (default: the largest model, greedy).",
        ),
    ] = None,
) -> None:
    """Simulate a plan on a sample bank: the runtime's decisions, without a model, vectorised;
    each strategy's cost also as a ratio to the reference's on the same problems."""

    def go():
        from cascadec.api import resolve_plan
        from cascadec.runtime.data import read_table
        from cascadec.runtime.equivalence import Equivalence
        from cascadec.sim.bank import covered_problems, load_bank
        from cascadec.sim.recorded import answer_format_warnings, token_budget_warnings
        from cascadec.sim.simulate import problems_for, simulate

        if equivalence not in ("math", "exact"):
            raise UsageError(f"--equivalence must be math or exact, got {equivalence!r}")
        inputs = (target, bank, data, models)
        writes = json_out is not None and str(json_out) != "-"
        if writes:  # before the work: never over an input or a user's file
            check_output_file(json_out, inputs, replaceable=SIMULATE_JSON_KEYS)
        plan, diags = resolve_plan(target, models=models)
        for d in diags:
            sys.stderr.write(d.format() + "\n")
        frame = read_table(data)
        if limit is not None:
            frame = frame.head(limit)
        bank_frame = load_bank(bank)
        for line in [*token_budget_warnings(plan, bank_frame), *answer_format_warnings(plan, bank_frame)]:
            sys.stderr.write(f"warning: {line}\n")
        problems, uncovered = covered_problems(problems_for(plan, frame, str(data)), bank_frame, str(data))
        if uncovered:
            sys.stderr.write(
                f"note: the bank has samples for {len(problems)} of the {len(problems) + uncovered} "
                f"problems of {data}: simulating those\n"
            )
        sim = simulate(plan, bank_frame, problems, equivalence=Equivalence(equivalence))
        ratio, ref_key = reference_ratio(plan, bank_frame, problems, equivalence, reference, models)
        rows = []
        for c in range(len(sim.strategies)):
            r = sim.summary(c)
            r.pop("stop_reasons")
            at = list(r).index("cost") + 1  # the ratio beside the raw cost, as calibrate prints it
            items = list(r.items())
            items.insert(at, ("cost_ratio", None if ratio is None else ratio(r["cost"])))
            rows.append(dict(items))
        title = f"simulated on {bank}: {len(sim.problems)} problems"
        if ref_key is not None:
            title += f"; cost_ratio = total cost / total cost of {ref_key} on the same problems"
        print_frame(rows, title, stderr=json_out is not None and not writes)  # stdout: the JSON alone
        if json_out is not None:
            body = dict(rows[0])
            body["reference"] = ref_key
            body["strategies"] = [dict(r, per_problem=sim.per_problem(c)) for c, r in enumerate(rows)]
            body["bank"] = str(bank)
            body["plan_hash"] = plan.hash
            text = json.dumps(body, indent=2) + "\n"
            if writes:
                write_output(json_out, text, inputs, replaceable=SIMULATE_JSON_KEYS)
            else:
                sys.stdout.write(text)

    guarded(go)


def register(app: typer.Typer) -> None:
    app.add_typer(bank_app, name="bank", help="Sample banks: record every model once, replay any plan.")
    app.command("simulate")(simulate_command)
