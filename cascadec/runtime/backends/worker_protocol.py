"""What the parent and a vLLM worker exchange: the engine config, the request dict, a failure read back.

Shared by the offline backend's spawned worker (:mod:`cascadec.runtime.backends.vllm_offline`)
and Ray's replicas (:mod:`cascadec.runtime.backends.ray_actors`), so both build engines and
requests alike, and seeds follow the one rule (:mod:`cascadec.core.seeds`). No vLLM import.
"""

from __future__ import annotations

import os
import re

from cascadec.core.seeds import request_seed
from cascadec.plan import PlanModel
from cascadec.runtime.backends.base import GenerationRequest


def worker_config(model: PlanModel, **settings) -> dict:
    """What a worker needs to build its engine (the offline worker and Ray replicas alike)."""
    return {"model": model.model_dump(), "path": os.path.expanduser(model.path), "log_path": None, **settings}


def worker_request(req: GenerationRequest) -> dict:
    """What the worker needs of a request (its seed by the one rule, :mod:`cascadec.core.seeds`)."""
    seed = request_seed(req.seed, req.first_sample)
    return {
        "prompt": req.prompt,
        "n": int(req.n),
        "temperature": float(req.temperature),
        "top_p": float(req.top_p),
        "max_tokens": int(req.max_tokens),
        "seed": seed,
    }


_LOG_ERROR = re.compile(r"\bERROR\b.*?\]\s+((?:[\w.]+\.)?\w*(?:Error|Exception)\b:?.*)$")


def summarise_failure(error: str | None, log: str) -> str:
    """The exception the worker sent plus the root causes vLLM's engine processes logged."""
    parts = []
    if error:
        lines = error.rstrip().splitlines()
        frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
        rest = lines[frames[-1] + 1 :] if frames else lines
        while rest and rest[0].startswith("    "):
            rest = rest[1:]
        parts.append("\n".join(rest[:20]).strip())
    causes: list[str] = []
    for line in log.splitlines():
        match = _LOG_ERROR.search(line)
        if match and match.group(1) not in causes:
            causes.append(match.group(1))
    if causes:
        parts.append("root cause in the engine log: " + "\n  ".join(causes[:3]))
    if not parts:
        tail = "\n".join(log.rstrip().splitlines()[-10:])
        parts.append(f"no error text; last lines of its log:\n{tail}" if tail else "no error text")
    return "\n".join(parts)
