"""A tiny random-weight Qwen2 model in HF format, built in seconds, for engine tests.

Why: the backend tests must run the real vLLM engine without network access and without
waiting for the model zoo to be trained. A 2-layer, 64-wide Qwen2 with a character-level
tokenizer is a few hundred kB, loads in vLLM on CPU like any hub model, and its random
weights give high-entropy samples, which is what seed and logprob tests need.

Run as a script to build one: ``python tests/integration/tiny_model.py OUT_DIR``.
"""

from __future__ import annotations

import json
import string
import sys
from pathlib import Path

# Printable ASCII without whitespace other than the space: one token per character.
CHARS = "".join(sorted(set(string.printable) - set("\t\n\r\x0b\x0c")))
MAX_LEN = 128


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write config.json, float32 safetensors and the tokenizer to ``out_dir``; return it."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from cascadec.zoo.tokenizer import BOS, EOS, PAD, save_tokenizer, vocabulary

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary(CHARS)
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=MAX_LEN,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[PAD],
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    # Random init gives near-uniform next-token distributions (std 0.02): widen the output
    # layer so samples are varied but not pure noise, and greedy decoding is well defined.
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(out, CHARS, MAX_LEN)
    gen = {"bos_token_id": vocab[BOS], "eos_token_id": vocab[EOS], "pad_token_id": vocab[PAD]}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    return out


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen2"
    print(build_tiny_model(target))
