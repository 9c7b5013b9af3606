"""``cascadec serve``: run the OpenAI-compatible cascade server (uvicorn on loopback by default).

Every setting of :class:`ServeConfig` is an option here with the model's own default, bound,
help and choices (:func:`_option`), so the command and the config cannot drift apart; the
command only adds where to listen and how loud to log.
"""

from __future__ import annotations

import logging
import sys
import time
import typing
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cascadec.errors import CascadecError, UsageError, error_exit
from cascadec.serve.config import ServeConfig

FIELDS = ServeConfig.model_fields
RENAMED = {"timeout_s": "--timeout"}  # options not spelled like their field


def _flag(name: str) -> str:
    return RENAMED.get(name, f"--{name.replace('_', '-')}")


def _default(name: str):
    return FIELDS[name].default


def _choices(name: str) -> tuple[str, ...]:
    """A ``Literal`` field's values (else none)."""
    kind = FIELDS[name].annotation
    return typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()


def _option(name: str) -> typer.models.OptionInfo:
    """The option of config field ``name`` (``--the-name``): its description, lower bound and choices."""
    field = FIELDS[name]
    bounds = {}
    for rule in field.metadata:
        if getattr(rule, "ge", None) is not None:
            bounds["min"] = rule.ge
        if getattr(rule, "gt", None) is not None:  # typer has no open bound: the config checks it
            bounds["min"] = rule.gt
    text = field.description or ""
    if _choices(name):
        text = f"{text} ({' | '.join(_choices(name))})".strip()
    return typer.Option(_flag(name), help=text, **bounds)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve")
    def serve_command(
        models: Annotated[str | None, _option("models")] = None,
        specs: Annotated[Path | None, _option("specs")] = None,
        endpoints: Annotated[str | None, _option("endpoints")] = None,
        engines: Annotated[str, _option("engines")] = _default("engines"),
        bank: Annotated[Path | None, _option("bank")] = None,
        host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to bind.")] = 8000,
        max_concurrency: Annotated[int, _option("max_concurrency")] = _default("max_concurrency"),
        max_queue: Annotated[int, _option("max_queue")] = _default("max_queue"),
        max_request_bytes: Annotated[int, _option("max_request_bytes")] = _default("max_request_bytes"),
        max_prompt_chars: Annotated[int, _option("max_prompt_chars")] = _default("max_prompt_chars"),
        max_samples: Annotated[int, _option("max_samples")] = _default("max_samples"),
        timeout: Annotated[float, _option("timeout_s")] = _default("timeout_s"),
        batch_window_ms: Annotated[float, _option("batch_window_ms")] = _default("batch_window_ms"),
        max_batch: Annotated[int, _option("max_batch")] = _default("max_batch"),
        equivalence: Annotated[str, _option("equivalence")] = _default("equivalence"),
        log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    ) -> None:
        """Serve strategies over HTTP as OpenAI models: `model` is a marker, a spec name or a model.

        Clients send POST /v1/chat/completions or /v1/completions; also GET /v1/models, /health,
        /metrics. Set CASCADEC_SERVE_API_KEY to require `Authorization: Bearer <key>`;
        CASCADEC_UPSTREAM_API_KEY (else OPENAI_API_KEY) is sent to the endpoints.
        """
        levels = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
        if log_level.lower() not in levels:
            raise _fail(f"--log-level must be one of {', '.join(levels)}, got {log_level!r}")
        for name, value in (("engines", engines), ("equivalence", equivalence)):
            if value not in _choices(name):
                raise _fail(f"--{name} must be {' or '.join(_choices(name))}, got {value!r}")
        if engines == "local" and endpoints is not None:
            raise _fail("give --endpoints or --engines local, not both")
        if (
            endpoints is not None
            and not endpoints.startswith(("http://", "https://"))
            and not Path(endpoints).is_file()
        ):
            raise _fail(f"no such endpoints file: {endpoints}")
        if (engines == "replay") != (bank is not None):
            raise _fail(
                "--engines replay takes its samples from --bank BANK (and --bank needs --engines replay)"
            )
        if engines == "replay" and endpoints is not None:
            raise _fail("give --endpoints or --engines replay, not both")
        if bank is not None:
            from cascadec.runtime.backends.replay import bank_path

            if not bank_path(bank).is_file():
                raise _fail(
                    f"no such sample bank (a parquet file or a bank directory): {bank}", code_text="E901"
                )
        if specs is not None and not specs.is_dir():
            raise _fail(f"--specs: no such folder: {specs}")
        try:
            import uvicorn

            from cascadec.serve.app import create_app
        except ImportError as exc:
            raise _fail(f"cascadec serve needs its extra: pip install 'cascadec[serve]' ({exc})") from None
        given = {"timeout_s": timeout, **{k: v for k, v in locals().items() if k in FIELDS}}
        try:
            config = ServeConfig(**given)  # the options are the config's fields, by name
        except ValidationError as exc:
            err = exc.errors()[0]
            raise _fail(f"{_flag(str(err['loc'][0]))}: {err['msg']}") from None
        _check_listen(host, port)  # a bad host or a port in use: one line, before anything loads
        log = _stage_log(log_level)
        t0 = time.perf_counter()
        log.info("compiling the strategies (--models %s, --specs %s)", models or "default", specs or "none")
        try:
            application = create_app(config)
        except CascadecError as exc:
            raise error_exit(exc) from None
        server = application.state.server
        log.info(
            "compiled %d specs (%s) in %.1fs; loading %d engines (%s) when the server starts",
            len(server.catalog.specs),
            ", ".join(server.catalog.specs) or "none",
            time.perf_counter() - t0,
            len(server.engines.engines),
            config.engines,
        )
        try:
            uvicorn.run(application, host=host, port=port, log_level=log_level.lower())
        except OSError as exc:  # the port taken between the check and the bind
            raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code_text="E901") from None


def _stage_log(level: str) -> logging.Logger:
    """The server's own log lines (a line per start-up stage: compiling, loading the engines, ready)
    on stderr as uvicorn prints its own, also when stderr is no terminal."""
    log = logging.getLogger("cascadec.serve")
    if not any(getattr(h, "_cascadec_stage", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        handler._cascadec_stage = True
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if level.lower() in ("debug", "trace") else level.upper())
    return log


def _check_listen(host: str, port: int) -> None:
    """E901 (exit 2) unless ``host:port`` can be bound now (the address resolves, the port is free)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise _fail(f"--host {host!r} is not an address this machine has: {exc}", code_text="E901") from None
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code_text="E901") from None


def _fail(message: str, *, code_text: str = "E900") -> SystemExit:
    """``error: CODE message`` on stderr, printed (and the exit chosen) by ``errors.error_exit``."""
    error = UsageError(message) if code_text == "E900" else CascadecError(message, code=code_text)
    return error_exit(error)
