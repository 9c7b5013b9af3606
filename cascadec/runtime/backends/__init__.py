"""Backends by name: ``make_backend("replay", bank=...)``; heavy engines are imported lazily."""

from __future__ import annotations

from typing import Any

from cascadec.errors import BackendError, CascadecError
from cascadec.runtime.backends.base import Backend, GenerationRequest, Sample

__all__ = ["BACKENDS", "Backend", "GenerationRequest", "Sample", "make_backend"]

BACKENDS = ("vllm", "openai", "ray", "replay")


def make_backend(name: str, **opts: Any) -> Backend:
    """Build the backend called ``name`` with its options (``bank=`` for replay)."""
    if name == "replay":
        from cascadec.runtime.backends.replay import ReplayBackend

        bank = opts.pop("bank", None)
        if bank is None:
            raise CascadecError("the replay backend needs a sample bank (--bank FILE)", code="E900")
        return ReplayBackend(bank, **opts)
    if name == "vllm":
        try:
            from cascadec.runtime.backends.vllm_offline import VLLMBackend
        except ImportError as exc:
            raise BackendError(
                f"the vllm backend is not available: {exc} (install cascadec[cpu] or cascadec[gpu])"
            ) from None
        return VLLMBackend(**opts)
    if name == "openai":
        from cascadec.runtime.backends.openai_http import OpenAIBackend

        return OpenAIBackend(**opts)
    if name == "ray":
        from cascadec.runtime.backends.ray_actors import RayBackend

        return RayBackend(**opts)
    raise CascadecError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}", code="E900")
