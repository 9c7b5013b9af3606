"""The runtime: execute a plan over a problem table, one model at a time.

``from cascadec.runtime import run, load_results`` — imported lazily, so importing this
package costs nothing and never pulls in an inference engine.
"""

from __future__ import annotations

from typing import Any

__all__ = ["execute", "load_results", "prepare", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cascadec.runtime import api

        return getattr(api, name)
    raise AttributeError(f"module 'cascadec.runtime' has no attribute {name!r}")
