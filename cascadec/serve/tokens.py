"""Prompt token counts for ``usage``: the model's own tokenizer, loaded once per model.

Engines report generated tokens per sample but not prompt tokens, so the server counts them
itself with the tokenizer the engine uses (the weights folder). As OpenAI counts ``n > 1``, a
request's ``prompt_tokens`` counts the prompt once per tier that read it (its samples, rounds
and retries share it), never once per sample.
Without a local tokenizer (a hub id and no cache, or no ``transformers``) the count is 0.
"""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger("cascadec.serve")


@functools.lru_cache(maxsize=32)
def _tokenizer(path: str):
    if not os.path.isdir(os.path.expanduser(path)):
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(os.path.expanduser(path))
    except Exception as exc:  # no transformers, no tokenizer files: count nothing, say so once
        log.warning("no tokenizer for %s (%s): prompt_tokens will be 0", path, type(exc).__name__)
        return None


def prompt_tokens(path: str, prompt: str) -> int:
    tok = _tokenizer(path)
    if tok is None:
        return 0
    return len(tok(prompt)["input_ids"])  # as vLLM encodes a prompt


def warm_tokenizers(paths: list[str]) -> None:
    """Load every engine's tokenizer now, at startup, not inside the first request."""
    for path in paths:
        _tokenizer(path)
