"""The ``cascadec`` command line. Each command group lives in its own module.

Exit codes everywhere, by one rule (``cascadec.errors.exit_code``): 0 ok, 1 findings or bad
input, 2 usage or I/O, 3 internal bug. No input produces a traceback: cascadec errors become
one located message.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from cascadec import __version__
from cascadec.errors import CascadecError, UsageError, error_exit
from cascadec.redact import install_log_redaction

app = typer.Typer(
    name="cascadec",
    help="Compile and run model-cascade strategies (markers or YAML specs) for math problems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cascadec {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """cascadec: markers and YAML specs → checked execution plans → vLLM runs."""


@app.command()
def lint(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Marker files (one a line), YAML specs, plans, CSV/JSONL/parquet tables; - for stdin."
        ),
    ],
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    column: Annotated[str, typer.Option("--column", help="Strategy column of tables.")] = "strategy",
    models: Annotated[
        Path | None, typer.Option("--models", help="Model registry YAML (default: Qwen2.5-Math).")
    ] = None,
) -> None:
    """Check markers and specs; print `path:line:col: CODE message` for each finding."""
    from cascadec.lint import lint_paths, render_findings

    if format not in ("text", "json"):
        raise error_exit(UsageError(f"--format must be text or json, got {format!r}"))
    result = lint_paths(paths, column=column, registry=models)
    out, err = render_findings(result, format)
    sys.stdout.write(out)
    sys.stderr.write(err)
    raise typer.Exit(result.exit_code(strict))


def _register_commands() -> None:
    """Command groups from other layers; each module keeps its heavy imports inside commands."""
    from cascadec import (
        cli_calibrate,
        cli_compile,
        cli_data,
        cli_evidence,
        cli_optimize,
        cli_report,
        cli_router,
        cli_run,
        demo,
    )
    from cascadec.serve import cli as cli_serve
    from cascadec.zoo.cli import zoo_app

    modules = (
        cli_compile,
        cli_run,
        demo,
        cli_serve,
        cli_evidence,
        cli_calibrate,
        cli_optimize,
        cli_report,
        cli_router,
        cli_data,
    )
    for module in modules:
        module.register(app)
    app.add_typer(
        zoo_app, name="zoo", help="The model zoo: sample problems, train and evaluate the tiny models."
    )


_register_commands()


def _printable_streams() -> None:
    """A terminal that cannot show a character (LANG=C, an ascii pipe) gets ``\\u0412``, not exit 3."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _is_usage_error(exc: BaseException) -> bool:
    """click's own usage errors (typer ships its own copy of click: matched by class name)."""
    return any(c.__name__ == "UsageError" for c in type(exc).__mro__) and hasattr(exc, "format_message")


def _usage_error(exc) -> UsageError:
    """A click usage error (a missing option, a bad choice, an unknown flag, no command) as E900."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "cascadec"
    if type(exc).__name__ == "NoArgsIsHelpError":
        sys.stderr.write(ctx.get_help() + "\n\n" if ctx is not None else "")
        return UsageError(f"{path}: give a command (see above)")
    return UsageError(f"{path}: {exc.format_message()} (see '{path} --help')")


def main() -> None:
    """Console-script entry point: every error is printed once, with its registered code, by
    ``cascadec.errors.error_exit`` and exits by the one rule (``exit_code``)."""
    _printable_streams()
    install_log_redaction()  # a library logging a key it was given never shows it
    if not os.environ.get("CASCADEC_DEBUG"):  # numpy's notes on empty or NaN figures, with source paths:
        warnings.filterwarnings(  # the figures themselves say NaN or '-'
            "ignore", r"(Mean of empty slice|invalid value encountered|Degrees of freedom)", RuntimeWarning
        )
    try:
        status = app(standalone_mode=False, prog_name="cascadec")
    except (CascadecError, OSError) as exc:  # OSError: a file the user named; I/O, not a bug
        raise error_exit(exc) from None
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a raw traceback
        if _is_usage_error(exc):
            raise error_exit(_usage_error(exc)) from None
        if os.environ.get("CASCADEC_DEBUG"):
            raise
        raise error_exit(exc) from None
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
