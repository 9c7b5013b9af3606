"""The ``cascadec`` command line. Each command group lives in its own module.

Exit codes everywhere, by one rule (``cascadec.errors.exit_code``): 0 ok, 1 findings or bad
input, 2 usage or I/O, 3 internal bug. No input produces a traceback: cascadec errors become
one located message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec import __version__
from cascadec.errors import CascadecError, ExitCode, exit_code
from cascadec.redact import install_log_redaction, redact

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
    from cascadec.lint import lint_paths, render

    if format not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, got {format!r}")
    result = lint_paths(paths, column=column, registry=models)
    out, err = render(result, format)
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


def main() -> None:
    """Console-script entry point: map errors to messages and exit codes."""
    _printable_streams()
    install_log_redaction()  # a library logging a key it was given never shows it
    try:
        app()
    except CascadecError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exit_code(exc))
    except OSError as exc:  # a file the user named cannot be read or written: I/O, not a bug
        sys.stderr.write(
            redact(f"error: {exc.filename or ''}: {exc.strerror or exc}\n").replace("error: : ", "error: ")
        )
        sys.exit(exit_code(exc))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a raw traceback
        if os.environ.get("CASCADEC_DEBUG"):
            raise
        sys.stderr.write(
            f"cascadec: E999 internal error: {type(exc).__name__}: {redact(str(exc))}\n"
            "(set CASCADEC_DEBUG=1 for the traceback)\n"
        )
        sys.exit(ExitCode.INTERNAL)


if __name__ == "__main__":
    main()
