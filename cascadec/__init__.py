"""cascadec: compile and run model-cascade strategies for math problems.

The public API is imported lazily so ``import cascadec`` (and ``cascadec lint``) stays light:
nothing here pulls in torch, vLLM or pandas until it is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from cascadec.errors import CascadecError, Diagnostic, MarkerError, PlanError, SpecError

__version__ = "0.1.0"

_LAZY = {
    "parse_marker": "cascadec.marker",
    "analyze_marker": "cascadec.marker",
    "Marker": "cascadec.marker",
    "MarkerTier": "cascadec.marker",
    "load_registry": "cascadec.registry",
    "ModelRegistry": "cascadec.registry",
    "Plan": "cascadec.plan",
    "load_plan": "cascadec.plan",
    "compile_marker": "cascadec.compiler",
    "compile_spec": "cascadec.compiler",
    "run": "cascadec.api",
    "load_results": "cascadec.api",
    "load_data": "cascadec.api",
}

__all__ = ["CascadecError", "Diagnostic", "MarkerError", "PlanError", "SpecError", "__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from cascadec.api import load_data, load_results, run
    from cascadec.compiler import compile_marker, compile_spec
    from cascadec.marker import Marker, MarkerTier, analyze_marker, parse_marker
    from cascadec.plan import Plan, load_plan
    from cascadec.registry import ModelRegistry, load_registry


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cascadec' has no attribute {name!r}")
