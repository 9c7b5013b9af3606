"""The server's settings: where strategies and engines come from, and the limits it enforces.

Secrets are never settings: the bearer token clients must present and the key sent to
upstream endpoints are read from environment variables named here, so they never appear
in a command line, a log line or a response.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cascadec.redact import register_secret

AUTH_ENV = "CASCADEC_SERVE_API_KEY"  # bearer token clients must send (unset: no auth)
UPSTREAM_KEY_ENV = "CASCADEC_UPSTREAM_API_KEY"  # key sent to upstream endpoints (else OPENAI_API_KEY)


class ServeConfig(BaseModel):
    """Everything ``cascadec serve`` takes besides host and port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: str | None = Field(default=None, description="Model registry: YAML file or shipped name (zoo).")
    specs: Path | None = Field(default=None, description="Folder of YAML specs, served by their names.")
    engines: Literal["endpoints", "local", "replay"] = Field(
        default="endpoints",
        description="Where the models run: vllm serve endpoints, vLLM started here, or a sample bank's "
        "recorded samples (--bank; what `run --backend replay` replays).",
    )
    bank: Path | None = Field(
        default=None, description="Sample bank (parquet or directory) for --engines replay."
    )
    endpoints: str | None = Field(
        default=None, description="endpoints.json (model id → URL, from launch_vllm_serve.sh) or one URL."
    )
    equivalence: Literal["math", "exact"] = Field(default="math", description="How answers are compared.")
    max_concurrency: int = Field(default=64, ge=1, description="Requests processed at once.")
    max_queue: int = Field(default=256, ge=0, description="Requests waiting beyond that (then 429).")
    max_request_bytes: int = Field(
        default=1 << 20, ge=256, description="Largest request body in bytes (then 413)."
    )
    max_prompt_chars: int = Field(
        default=32_000, ge=1, description="Longest problem text in characters (then 413)."
    )
    max_samples: int = Field(
        default=64, ge=1, description="Most samples a strategy may draw per request (then 422)."
    )
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds per request, all tiers together (then 503).",
    )
    batch_window_ms: float = Field(
        default=2.0,
        ge=0,
        allow_inf_nan=False,
        description="Gather asks this long: one engine call (in-process), sent together (endpoints).",
    )
    max_batch: int = Field(
        default=256, ge=1, description="Most asks in one engine call (in-process) or in flight per endpoint."
    )
    auth_env: str = AUTH_ENV
    upstream_key_env: str = UPSTREAM_KEY_ENV

    def auth_token(self) -> str | None:
        token = os.environ.get(self.auth_env) or None
        register_secret(token)  # never in a response or a log line (cascadec.redact)
        return token

    def upstream_key(self) -> str | None:
        key = os.environ.get(self.upstream_key_env) or None
        register_secret(key)
        return key
