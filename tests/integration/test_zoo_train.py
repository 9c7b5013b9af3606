"""``cascadec zoo train`` is reproducible: same seed, same weights, and a usable registry."""

import subprocess
import sys

import pytest

from cascadec.marker import parse_marker
from cascadec.registry import load_registry

pytestmark = pytest.mark.integration


def train(root):
    command = [sys.executable, "-m", "cascadec", "zoo", "train", "--out", str(root / "zoo")]
    command += ["--minutes-scale", "0.01", "--only", "arith-0.034M", "--seed", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    return train(tmp_path_factory.mktemp("a")), train(tmp_path_factory.mktemp("b"))


def test_same_seed_same_weights(twice):
    a, b = twice
    weights = "zoo/arith-0.034M/model.safetensors"
    assert (a / weights).read_bytes() == (b / weights).read_bytes()


def test_trained_model_is_in_a_usable_registry(twice):
    pytest.importorskip("transformers")
    from transformers import AutoModelForCausalLM

    registry = load_registry(twice[0] / "zoo" / "zoo.yaml")  # inside --out, nothing beside it
    assert not (twice[0] / "zoo.yaml").exists()
    marker = parse_marker("mv_0.034M_k2_t0.7", registry=registry)
    assert marker.tiers[0].model == "cascadec-zoo/arith-0.034M"
    entry = registry.models[0]
    model = AutoModelForCausalLM.from_pretrained(registry.weights_path(entry))
    assert sum(p.numel() for p in model.parameters()) == entry.params
