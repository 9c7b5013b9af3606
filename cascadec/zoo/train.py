"""Train the three zoo models on CPU: tiny Qwen2 transformers on the generated sum task.

Recipe (chosen so all three fit in under an hour on 2 cores): loss on the target chain
only (the prompt's digits are random, learning them only slows training down), AdamW with a
linear warm-up then cosine decay, fresh problems every step from the ``train:`` seed
namespace, step budgets instead of wall-clock budgets so a rerun reproduces the weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from cascadec.zoo.task import (
    LADDER,
    TEST_MIX,
    TRAIN_MIX,
    longest_text,
    make_problem,
    target_text,
    training_stream,
)
from cascadec.zoo.tokenizer import vocabulary

MAX_POSITIONS = 128


@dataclass(frozen=True)
class ModelRecipe:
    """Shape and training budget of one zoo model. ``head_dim`` 32: vLLM on CPU needs 32/64."""

    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    steps: int
    batch: int = 256
    lr: float = 1e-3
    warmup: int = 100
    mix: tuple[float, ...] = TRAIN_MIX
    log_every: int = 250
    # Stop once the probe's exact match reaches this: lands a model mid-way up the ladder
    # whatever the machine, instead of betting on where a step budget leaves it.
    stop_at: float | None = None

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# Smallest to largest; folder names carry the alias of the real parameter count. Measured on
# the 2-core machine with 1 thread: ~5, ~4 and ~25 minutes. The small model only has room for
# 1-2 digit sums; the middle one is stopped while still learning 3-operand sums (its full run
# reaches ~97%, too close to the large one); the large one learns every bucket.
RECIPES: tuple[ModelRecipe, ...] = (
    ModelRecipe("arith-0.034M", hidden=32, layers=2, heads=1, intermediate=128, steps=3000, lr=3e-3),
    ModelRecipe(
        "arith-0.084M",
        hidden=64,
        layers=2,
        heads=2,
        intermediate=128,
        steps=2000,
        lr=3e-3,
        log_every=50,
        stop_at=0.88,
    ),
    ModelRecipe("arith-1.1M", hidden=128, layers=5, heads=4, intermediate=384, steps=1500, lr=2e-3),
)


def qwen2_config(recipe: ModelRecipe):
    from transformers import Qwen2Config

    vocab = vocabulary()
    return Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=recipe.hidden,
        intermediate_size=recipe.intermediate,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=vocab["<bos>"],
        eos_token_id=vocab["<eos>"],
        pad_token_id=vocab["<pad>"],
        rope_theta=10000.0,
    )


def count_parameters(model) -> int:
    """Unique parameters (tied embeddings counted once): the cost of one generated token."""
    return sum(p.numel() for p in model.parameters())


def encode_batch(pairs: list[tuple[str, str]], vocab: dict[str, int]):
    """Right-padded ids and labels: ``<bos> prompt target <eos>``, loss on target and eos only."""
    import torch

    rows, labels = [], []
    for prompt, target in pairs:
        prompt_ids = [vocab["<bos>"]] + [vocab[c] for c in prompt]
        target_ids = [vocab[c] for c in target] + [vocab["<eos>"]]
        rows.append(prompt_ids + target_ids)
        labels.append([-100] * len(prompt_ids) + target_ids)
    width = max(len(r) for r in rows)
    pad = vocab["<pad>"]
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    lab = torch.tensor([r + [-100] * (width - len(r)) for r in labels])
    return ids, lab


def learning_rate(recipe: ModelRecipe, step: int) -> float:
    """Linear warm-up to ``lr`` then cosine decay to a tenth of it at the last step."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def exact_match_by_bucket(model, problems, vocab: dict[str, int]) -> dict[str, float]:
    """Per bucket, the share of problems whose whole target is the argmax at every step.

    Teacher-forced, one forward pass: when every step's argmax is the target token, greedy
    decoding writes exactly the target, so this is (a tight lower bound of) greedy accuracy.
    """
    import torch

    ids, lab = encode_batch([(p.problem, target_text(p)) for p in problems], vocab)
    with torch.no_grad():
        predicted = model(input_ids=ids).logits[:, :-1].argmax(-1)
    wanted = lab[:, 1:]
    right = ((predicted == wanted) | (wanted == -100)).all(dim=1).tolist()
    buckets: dict[int, list[bool]] = {}
    for ok, p in zip(right, problems, strict=True):
        buckets.setdefault(p.bucket, []).append(ok)
    return {"all": sum(right) / len(right)} | {f"b{b}": sum(v) / len(v) for b, v in sorted(buckets.items())}


def _format_exact(exact: dict) -> str:
    return " ".join(f"{k}:{v:.2f}" for k, v in exact.items())


def probe_problems(seed: int, n: int = 600):
    """Held-out-like problems (test mix) drawn from the train namespace, to watch training."""
    rng = random.Random(f"train:probe:{seed}")
    return [make_problem(rng, rng.choices(LADDER, weights=TEST_MIX)[0], f"probe-{i}") for i in range(n)]


def train_one(recipe: ModelRecipe, seed: int, scale: float = 1.0, threads: int = 1, log=print):
    """Train one model from scratch; returns (model, stats)."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    vocab = vocabulary()
    model = Qwen2ForCausalLM(qwen2_config(recipe)).float()
    if not recipe.name.endswith(alias_for(count_parameters(model))):
        raise ValueError(
            f"recipe {recipe.name} has {count_parameters(model)} parameters: "
            f"rename it to end in {alias_for(count_parameters(model))}"
        )
    model.train()
    steps = max(recipe.warmup + 1, round(recipe.steps * scale))
    recipe = dataclasses.replace(recipe, steps=steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.01)
    stream = training_stream(seed=seed, mix=recipe.mix)
    probe = probe_problems(seed)
    started = time.monotonic()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(recipe, step)
        ids, lab = encode_batch([next(stream) for _ in range(recipe.batch)], vocab)
        loss = model(input_ids=ids, labels=lab).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % recipe.log_every == 0 or step == steps - 1:
            model.eval()
            exact = exact_match_by_bucket(model, probe, vocab)
            model.train()
            log(
                f"{recipe.name} step {step + 1}/{steps} loss {loss.item():.4f} "
                f"exact {_format_exact(exact)} {time.monotonic() - started:.0f}s"
            )
            if recipe.stop_at is not None and exact["all"] >= recipe.stop_at:
                log(f"{recipe.name}: probe exact match reached {recipe.stop_at}, stopping")
                steps = step + 1
                break
    model.eval()
    stats = {
        "steps": steps,
        "seconds": round(time.monotonic() - started, 1),
        "params": count_parameters(model),
        "probe_exact": exact_match_by_bucket(model, probe, vocab),
    }
    return model, stats


def save_model(model, out_dir: Path) -> None:
    """HF folder: config, float32 safetensors, tokenizer files, generation config."""
    from transformers import GenerationConfig

    from cascadec.zoo.tokenizer import save_tokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    # Older transformers (a GPU vLLM install) read these keys instead of rope_parameters/dtype.
    config.setdefault("rope_theta", 10000.0)
    config.setdefault("torch_dtype", "float32")
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    ids = model.config
    GenerationConfig(
        bos_token_id=ids.bos_token_id, eos_token_id=ids.eos_token_id, pad_token_id=ids.pad_token_id
    ).save_pretrained(str(out_dir))
    save_tokenizer(out_dir)


def max_new_tokens() -> int:
    """Tokens the longest target needs, eos included."""
    return len(longest_text()[1]) + 1


def alias_for(params: int) -> str:
    """Marker alias from a parameter count, in millions with two significant digits: 0.022M."""
    millions = params / 1e6
    return f"{float(f'{millions:.2g}'):g}M"


def registry_yaml(entries: list[tuple[str, int]], zoo_dir_name: str = "zoo") -> str:
    """The text of zoo.yaml for (folder name, parameter count) pairs, smallest first."""
    lines = [
        "# The project's own tiny Qwen2 models (cascadec zoo train; measured by cascadec zoo eval).",
        "# params is the exact parameter count: the cost of one generated token.",
        "version: 1",
        "family: cascadec-zoo",
        "prompt: raw                 # the problem text is the prompt, verbatim",
        "models:",
    ]
    for name, params in sorted(entries, key=lambda e: e[1]):
        alias = alias_for(params)
        lines += [
            f"  - id: cascadec-zoo/{name}",
            f"    aliases: [{alias}]",
            f"    path: {zoo_dir_name}/{name}",
            f"    params: {params}",
            f"    max_model_len: {MAX_POSITIONS}",
            "    dtype: float32",
            "    gpu_memory_utilization: 0.05",
        ]
    return "\n".join(lines) + "\n"


def write_registry(path: Path, zoo_dir: Path) -> Path:
    """Rewrite zoo.yaml from the model folders present in ``zoo_dir`` (their real counts)."""
    from safetensors import safe_open

    entries = []
    for recipe in RECIPES:
        weights = zoo_dir / recipe.name / "model.safetensors"
        if not weights.exists():
            continue
        with safe_open(str(weights), framework="pt") as fh:
            params = sum(math.prod(fh.get_slice(key).get_shape()) for key in fh.keys())
        entries.append((recipe.name, params))
    relative = os.path.relpath(zoo_dir, path.parent)
    path.write_text(registry_yaml(entries, relative))
    return path
