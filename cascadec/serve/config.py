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

AUTH_ENV = "CASCADEC_SERVE_API_KEY"  # bearer token clients must send (unset: no auth)
UPSTREAM_KEY_ENV = "CASCADEC_UPSTREAM_API_KEY"  # key sent to upstream endpoints (else OPENAI_API_KEY)


class ServeConfig(BaseModel):
    """Everything ``cascadec serve`` takes besides host and port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: str | None = Field(default=None, description="Registry: YAML path or shipped name (zoo)")
    specs: Path | None = Field(default=None, description="Folder of YAML specs served by name")
    engines: Literal["endpoints", "local"] = "endpoints"
    endpoints: str | None = Field(default=None, description="endpoints.json path or one base URL")
    equivalence: Literal["math", "exact"] = "math"
    max_concurrency: int = Field(default=64, ge=1, description="Requests processed at once")
    max_queue: int = Field(default=256, ge=0, description="Requests waiting beyond that (then 429)")
    max_request_bytes: int = Field(default=1 << 20, ge=256, description="Largest request body")
    max_prompt_chars: int = Field(default=32_000, ge=1, description="Longest problem text")
    max_samples: int = Field(default=64, ge=1, description="Most samples one request may draw")
    timeout_s: float = Field(default=120.0, gt=0, description="Per request, all tiers together")
    batch_window_ms: float = Field(default=2.0, ge=0, description="Wait this long to gather a batch")
    max_batch: int = Field(default=256, ge=1, description="Most requests in one engine call")
    auth_env: str = AUTH_ENV
    upstream_key_env: str = UPSTREAM_KEY_ENV

    def auth_token(self) -> str | None:
        return os.environ.get(self.auth_env) or None

    def upstream_key(self) -> str | None:
        return os.environ.get(self.upstream_key_env) or None
