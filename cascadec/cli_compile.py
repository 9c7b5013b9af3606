"""``cascadec compile``, ``explain`` and ``schema``: the compiler's command line.

Exit codes by the one rule (``cascadec.errors.exit_code``): 0 ok (warnings allowed), 1 errors
in the input, 2 usage or I/O.
Bad input never produces a traceback: every error is a ``path:line:col: CODE message`` line.
Heavy modules are imported inside commands, so ``cascadec --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.core.policies import EquivalenceMode
from cascadec.errors import CascadecError, Diagnostic, UsageError, error_exit, exit_code


def _emit_diagnostics(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        sys.stderr.write(d.format() + "\n")


def _registry(models: str | None):
    from cascadec.compiler.context import resolve_registry

    if models is None:
        return None
    try:
        return resolve_registry(models)
    except CascadecError as exc:  # its code decides the exit (errors.exit_code), as in lint and run
        raise type(exc)(f"--models: {exc.message}", code=exc.code, where=exc.where) from None


def _table_markers(path: Path, column: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The marker column of a CSV / TSV / JSONL / parquet table, with each cell's position."""
    from cascadec.lint import TABLE_SUFFIXES, LintInputError, table_cells

    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UsageError(f"{path}: --table reads {', '.join(sorted(TABLE_SUFFIXES))} files")
    texts, where = [], []
    try:
        for line, offset, value in table_cells(path, suffix, column):
            texts.append("" if value is None or (isinstance(value, float) and value != value) else str(value))
            where.append((line, offset + 1))
    except LintInputError as exc:
        raise LintInputError(exc.message, where=path) from None
    return texts, where


def _compile(spec: str | None, marker: str | None, table: Path | None, column: str, models: str | None):
    from cascadec.compiler import compile_marker, compile_markers, compile_spec

    given = [x for x in (spec, marker, table) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of SPEC, --marker TEXT or --table FILE")
    registry = _registry(models)
    if marker is not None:
        return compile_marker(marker, registry)
    if table is not None:
        texts, where = _table_markers(table, column)
        return compile_markers(texts, registry, source=str(table), locations=where)
    assert spec is not None
    if not spec.lower().endswith((".yaml", ".yml")):
        raise UsageError(f"SPEC must be a .yaml/.yml file, got {spec!r} (use --marker for marker text)")
    return compile_spec(spec, registry)


def compile_command(
    spec: Annotated[str | None, typer.Argument(help="Strategy spec (.yaml).", show_default=False)] = None,
    marker: Annotated[str | None, typer.Option("--marker", help="Compile one marker instead.")] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="CSV/JSONL/parquet table of per-row markers.")
    ] = None,
    column: Annotated[str, typer.Option("--column", help="The table's strategy column.")] = "strategy",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the plan here (default: stdout).")
    ] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="Model registry: zoo, qwen2.5-math or a YAML file.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check (no plan); a search space: the base and every candidate, and how many there are.",
        ),
    ] = False,
) -> None:
    """Compile a spec, a marker or a table of markers into a JSON execution plan
    (``--check``: only check it; search spaces are checked candidate by candidate)."""
    from cascadec.plan import plan_to_json

    if check and output is not None:
        raise error_exit(UsageError("--check writes nothing; drop -o"))
    if spec is not None and spec.lower().endswith((".yaml", ".yml")) and marker is None and table is None:
        from cascadec.compiler.space import check_space, is_space_file

        if is_space_file(spec):
            if not check:
                raise error_exit(
                    UsageError(
                        f"{spec} is a search space (a spec with 'search:'), not one strategy: "
                        "check it with `cascadec compile --check` or `cascadec lint`, "
                        "search it with `cascadec calibrate` or `cascadec optimize --space`"
                    )
                )
            try:
                found = check_space(spec, _registry(models))
            except CascadecError as exc:
                raise error_exit(exc) from None
            _emit_diagnostics(found.diagnostics)
            sys.stderr.write(found.summary() + "\n")
            raise typer.Exit(exit_code(findings=not found.ok))
    try:
        plan, warnings = _compile(spec, marker, table, column, models)
    except CascadecError as exc:
        raise error_exit(exc) from None
    _emit_diagnostics(warnings)
    if check:
        sys.stderr.write(f"ok: {len(plan.strategies)} strategies compile ({plan.hash[:19]})\n")
        return
    if _write_or_print(plan_to_json(plan), output, inputs=(spec, table, models)):
        sys.stderr.write(f"wrote {output} ({len(plan.strategies)} strategies, {plan.hash[:19]})\n")


# ``explain --bank`` simulates the plan, but lint and compile must stay light (no runtime
# import, an import-linter contract): the full command line installs the estimator here
# (``cascadec.cli_optimize.register`` adds ``estimate_on_bank``) instead.
BANK_ESTIMATORS: list = []


def explain_command(
    target: Annotated[
        str | None, typer.Argument(help="A spec (.yaml) or a plan (.json).", show_default=False)
    ] = None,
    marker: Annotated[str | None, typer.Option("--marker", help="Explain one marker instead.")] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="Model registry: zoo, qwen2.5-math or a YAML file.")
    ] = None,
    escalation_rate: Annotated[
        float, typer.Option(help="Assumed share of problems each tier escalates.")
    ] = 0.3,
    token_share: Annotated[
        float, typer.Option(help="Assumed tokens per sample, as a share of max_tokens.")
    ] = 0.25,
    bank: Annotated[
        Path | None,
        typer.Option(
            "--bank", help="Sample bank: measure reach, escalation, samples and cost per tier on it."
        ),
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Problems of the bank (with --bank).")] = None,
    equivalence: Annotated[str, typer.Option("--equivalence", help="math (as run) or exact.")] = "math",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N problems.")] = None,
) -> None:
    """Print a plan as a table: tiers, models, k, T, conditions, worst-case and expected cost
    (assumed escalation rates, or measured by simulating the plan on --bank)."""
    from cascadec.compiler import load_any
    from cascadec.compiler.explain import render_plan

    try:
        if (target is None) == (marker is None):
            raise UsageError("give exactly one of SPEC|PLAN or --marker TEXT")
        if not (0 <= escalation_rate <= 1 and 0 < token_share <= 1):
            raise UsageError("--escalation-rate must be in [0, 1] and --token-share in (0, 1]")
        if (bank is None) != (data is None):
            raise UsageError("--bank and --data go together")
        if equivalence not in tuple(EquivalenceMode):
            raise UsageError(f"--equivalence must be math or exact, got {equivalence!r}")
        plan, warnings = load_any(marker if marker is not None else target, _registry(models))
        if bank is not None and not BANK_ESTIMATORS:
            raise UsageError("--bank needs the simulator, which this command line does not have")
        measured = None if bank is None else BANK_ESTIMATORS[0](plan, bank, data, equivalence, limit)
    except CascadecError as exc:
        raise error_exit(exc) from None
    _emit_diagnostics(warnings)
    render_plan(plan, escalation_rate=escalation_rate, token_share=token_share, measured=measured)


def _write_or_print(
    text: str, output: Path | None, inputs: tuple = (), replaceable: tuple[str, ...] = ("schema_version",)
) -> bool:
    """Write ``text`` to ``output`` (True) or stdout (False); an unwritable file exits 2.

    Never over an input, never over a file cascadec did not write (``limits.check_output_file``);
    atomically (a temp file renamed), so a failure leaves the old file whole."""
    from cascadec.limits import write_output

    if output is None:
        sys.stdout.write(text)
        return False
    try:
        write_output(output, text, inputs, replaceable=replaceable)  # checked and written under a lock
    except CascadecError as exc:
        raise error_exit(exc) from None
    return True


SCHEMAS = ("spec", "plan", "results", "space")


def schema_text(which: str) -> str:
    """The JSON Schema of a spec, a plan, a run's results or a search space, as deterministic text."""
    if which == "results":
        from cascadec.runtime.records import results_json_schema

        body = results_json_schema()
    elif which == "space":
        from cascadec.spec.space import space_json_schema

        body = space_json_schema()
    else:
        from cascadec.plan import Plan
        from cascadec.spec.model import Spec

        body = {"spec": Spec, "plan": Plan}[which].model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_command(
    which: Annotated[str, typer.Argument(help="spec, plan, results or space (a search space)")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Print the JSON Schema of a strategy spec, an execution plan, a run's result records or a search space."""
    if which not in SCHEMAS:
        raise error_exit(UsageError(f"schema is one of {', '.join(SCHEMAS)}, got {which!r}"))
    _write_or_print(schema_text(which), output, replaceable=("$schema",))


def register(app: typer.Typer) -> None:
    """Add ``compile``, ``explain`` and ``schema`` to the ``cascadec`` app."""
    app.command("compile")(compile_command)
    app.command("explain")(explain_command)
    app.command("schema")(schema_command)
