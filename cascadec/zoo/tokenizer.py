"""Character-level tokenizer for the zoo task, saved as a ``PreTrainedTokenizerFast``.

One token per character keeps the vocabulary tiny (the task's alphabet plus four specials),
so embeddings cost almost nothing and every digit is its own token. Encoding adds ``<bos>``
through the post-processor, so ``tokenizer(prompt)`` inside vLLM gives exactly the ids the
model was trained on; ``<eos>`` ends every target, and vLLM stops on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from cascadec.zoo.task import ALPHABET

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


def vocabulary(alphabet: str = ALPHABET) -> dict[str, int]:
    """Specials first (pad=0, bos=1, eos=2, unk=3), then one id per character of ``alphabet``."""
    chars = sorted(set(alphabet))
    return {token: i for i, token in enumerate((*SPECIALS, *chars))}


def build_tokenizer(alphabet: str = ALPHABET, max_length: int = 128):
    """The ``transformers.PreTrainedTokenizerFast`` for the zoo models (no chat template).

    Tests build other tiny models with a wider ``alphabet`` through the same code.
    """
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = vocabulary(alphabet)
    core = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    core.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=max_length,
        padding_side="right",
    )


def save_tokenizer(out_dir: str | Path, alphabet: str = ALPHABET, max_length: int = 128):
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json to ``out_dir``.

    The config names the class ``PreTrainedTokenizerFast`` (not transformers 5's
    ``TokenizersBackend``) so that older transformers, as on a GPU vLLM install, load it too.
    """
    out = Path(out_dir)
    tokenizer = build_tokenizer(alphabet, max_length)
    tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("backend", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return tokenizer
