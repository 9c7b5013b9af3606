"""GPU tests: skipped unless CUDA and the CUDA build of vLLM are both present.

The checks are shared with the CPU integration tests (``tests/integration/vllm_checks.py``)
and use the same tiny random model, so this folder only adds the CUDA fixtures.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))


def _cuda_problem() -> str | None:
    """Why the CUDA tests cannot run here, or None when they can."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install 'cascadec[gpu]')"
    from vllm.platforms import current_platform

    if not current_platform.is_cuda():
        return "the installed vllm is not the CUDA build"
    return None


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    mine = [item for item in items if here in Path(str(item.fspath)).resolve().parents]
    if not mine:
        return
    problem = _cuda_problem()
    for item in mine:
        item.add_marker(pytest.mark.gpu)
        if problem:
            item.add_marker(pytest.mark.skip(reason=problem))
