"""Find the files cascadec ships (grammars, specs, model registries).

In a wheel they live in ``cascadec/_data``; in a source checkout they are the top-level
``grammars/`` and ``specs/`` folders. One function hides the difference.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


@cache
def data_dir(name: str) -> Path:
    """Directory ``name`` (``grammars`` or ``specs``) of the installed package or the checkout."""
    packaged = Path(str(resources.files("cascadec") / "_data" / name))
    if packaged.is_dir():
        return packaged
    local = _CHECKOUT / name
    if local.is_dir():
        return local
    raise FileNotFoundError(f"cascadec data folder {name!r} is missing from this installation")


def grammar_text(filename: str) -> str:
    return (data_dir("grammars") / filename).read_text(encoding="utf-8")


def default_registry_path() -> Path:
    return data_dir("specs") / "models" / "qwen2.5-math.yaml"
