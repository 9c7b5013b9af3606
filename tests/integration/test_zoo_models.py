"""The shipped zoo models load with transformers and answer an easy sum in a box.

vLLM serving of the same models is tested through the runtime in test_zoo_cascade.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cascadec.registry import load_registry
from cascadec.resources import data_dir

pytestmark = pytest.mark.integration

REGISTRY = data_dir("specs") / "models" / "zoo.yaml"
EASY = [("7+5=", "12"), ("3+4=", "7"), ("23+41=", "64")]


def _entries():
    return sorted(load_registry(REGISTRY).models, key=lambda e: e.params)


def _boxed(text: str) -> str | None:
    from cascadec.runtime.answers import last_boxed

    return last_boxed(text)


def test_registry_lists_three_models_with_a_30x_ladder():
    entries = _entries()
    assert len(entries) == 3
    assert entries[-1].params >= 30 * entries[0].params
    for entry in entries:
        folder = Path(load_registry(REGISTRY).weights_path(entry))
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "generation_config.json",
        ):
            assert (folder / name).is_file(), f"{entry.id} lacks {name}"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_model_loads_with_transformers_and_boxes_an_easy_sum(index):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    registry = load_registry(REGISTRY)
    entry = _entries()[index]
    path = registry.weights_path(entry)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert sum(p.numel() for p in model.parameters()) == entry.params
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    assert head_dim in (32, 64), "vLLM on CPU needs a head_dim of 32 or 64"
    for prompt, answer in EASY:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        assert ids[0, 0].item() == tokenizer.bos_token_id
        out = model.generate(
            ids,
            max_new_tokens=32,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        new = out[0, ids.shape[1] :]
        assert new[-1].item() == tokenizer.eos_token_id, "generation must end with <eos>"
        assert _boxed(tokenizer.decode(new, skip_special_tokens=True)) == answer


def test_loaded_tokenizer_matches_the_training_tokenizer():
    """transformers (and so vLLM) may load the folder as another class (Qwen2Tokenizer, from
    config.json's model_type); prompts must still encode, and targets decode, exactly as in
    training."""
    transformers = pytest.importorskip("transformers")
    from cascadec.zoo.task import sample_problems, target_text
    from cascadec.zoo.tokenizer import build_tokenizer

    trained = build_tokenizer()
    loaded = transformers.AutoTokenizer.from_pretrained(load_registry(REGISTRY).weights_path(_entries()[0]))
    for problem in sample_problems(300, 11):
        prompt, target = problem["problem"], target_text(problem)
        assert loaded(prompt).input_ids == trained(prompt).input_ids, prompt
        ids = trained(prompt + target, add_special_tokens=False).input_ids
        assert loaded.decode(ids) == prompt + target
