"""``cascadec serve``: an OpenAI-compatible server whose ``model`` is a cascade strategy.

A marker (``mv_cascade_0.034M_k4_t0.7_1.1M_k1_t0.0``), a spec name from ``--specs`` or a
plain model alias is the model name; behind it run the same plans, jobs and backends as
``cascadec run``, with concurrent requests batched per model. Needs the ``serve``
extra (FastAPI, uvicorn, prometheus_client, openai); importing this package imports none of
them (the CLI registers ``serve`` in a base install), ``create_app`` does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cascadec.serve.app import create_app

        return create_app
    if name == "ServeConfig":
        from cascadec.serve.config import ServeConfig

        return ServeConfig
    raise AttributeError(name)
