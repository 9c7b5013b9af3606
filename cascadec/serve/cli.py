"""``cascadec serve``: run the OpenAI-compatible cascade server (uvicorn on loopback by default)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cascadec.errors import CascadecError, ExitCode, exit_code

EXIT_USAGE = ExitCode.USAGE


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve")
    def serve_command(
        models: Annotated[
            str | None, typer.Option("--models", help="Model registry: YAML file or shipped name (zoo).")
        ] = None,
        specs: Annotated[
            Path | None, typer.Option("--specs", help="Folder of YAML specs, served by their names.")
        ] = None,
        endpoints: Annotated[
            str | None,
            typer.Option(
                "--endpoints", help="endpoints.json (model id → URL, from launch_vllm_serve.sh) or one URL."
            ),
        ] = None,
        engines: Annotated[
            str, typer.Option("--engines", help="endpoints (vllm serve, default) or local (start vLLM here).")
        ] = "endpoints",
        host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to bind.")] = 8000,
        max_concurrency: Annotated[
            int, typer.Option("--max-concurrency", min=1, help="Requests at once.")
        ] = 64,
        max_queue: Annotated[
            int, typer.Option("--max-queue", min=0, help="Waiting requests (then 429).")
        ] = 256,
        max_request_bytes: Annotated[
            int, typer.Option("--max-request-bytes", min=256, help="Largest request body (413).")
        ] = 1 << 20,
        max_prompt_chars: Annotated[
            int, typer.Option("--max-prompt-chars", min=1, help="Longest problem text (413).")
        ] = 32_000,
        max_samples: Annotated[
            int,
            typer.Option("--max-samples", min=1, help="Most samples a strategy may draw per request (422)."),
        ] = 64,
        timeout: Annotated[
            float, typer.Option("--timeout", min=0.1, help="Seconds per request, all tiers (then 503).")
        ] = 120.0,
        batch_window_ms: Annotated[
            float, typer.Option("--batch-window-ms", min=0, help="Wait this long to gather a batch.")
        ] = 2.0,
        equivalence: Annotated[
            str, typer.Option("--equivalence", help="math (math-verify) or exact.")
        ] = "math",
        log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    ) -> None:
        """Serve strategies over HTTP as OpenAI models: `model` is a marker, a spec name or a model.

        Clients send POST /v1/chat/completions or /v1/completions; also GET /v1/models, /health,
        /metrics. Set CASCADEC_SERVE_API_KEY to require `Authorization: Bearer <key>`;
        CASCADEC_UPSTREAM_API_KEY (else OPENAI_API_KEY) is sent to the endpoints.
        """
        if engines not in ("endpoints", "local"):
            raise _fail(f"--engines must be endpoints or local, got {engines!r}", EXIT_USAGE)
        if engines == "local" and endpoints is not None:
            raise _fail("give --endpoints or --engines local, not both", EXIT_USAGE)
        if equivalence not in ("math", "exact"):
            raise _fail(f"--equivalence must be math or exact, got {equivalence!r}", EXIT_USAGE)
        if (
            endpoints is not None
            and not endpoints.startswith(("http://", "https://"))
            and not Path(endpoints).is_file()
        ):
            raise _fail(f"no such endpoints file: {endpoints}", EXIT_USAGE)
        if specs is not None and not specs.is_dir():
            raise _fail(f"--specs: no such folder: {specs}", EXIT_USAGE)
        try:
            import uvicorn

            from cascadec.serve.app import create_app
            from cascadec.serve.config import ServeConfig
        except ImportError as exc:
            raise _fail(
                f"cascadec serve needs its extra: pip install 'cascadec[serve]' ({exc})", EXIT_USAGE
            ) from None
        config = ServeConfig(
            models=models,
            specs=specs,
            engines=engines,  # type: ignore[arg-type]
            endpoints=endpoints,
            equivalence=equivalence,  # type: ignore[arg-type]
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            max_request_bytes=max_request_bytes,
            max_prompt_chars=max_prompt_chars,
            max_samples=max_samples,
            timeout_s=timeout,
            batch_window_ms=batch_window_ms,
        )
        try:
            application = create_app(config)
        except CascadecError as exc:
            text = "\n".join(d.format() for d in exc.diagnostics) or str(exc)
            raise _fail(text, exit_code(exc)) from None
        uvicorn.run(application, host=host, port=port, log_level=log_level)


def _fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)
