"""The OpenAI completions wire format: one set of arguments and one reading for every path."""

from types import SimpleNamespace

import pytest

from cascadec.errors import BackendError
from cascadec.runtime.backends.base import GenerationRequest
from cascadec.runtime.backends.openai_wire import Chunks, choice_sample, completion_args, too_long


def _choice(text, tokens, logprobs, tops, finish="stop"):
    lp = SimpleNamespace(tokens=tokens, token_logprobs=logprobs, top_logprobs=tops)
    return SimpleNamespace(text=text, finish_reason=finish, logprobs=lp)


def test_arguments_are_explicit_and_seeded_per_sample():
    sampled = GenerationRequest("r", "p", "1+1=", 4, 0.7, 0.8, 16, 100, first_sample=2)
    args = completion_args(sampled, "m", 5)
    assert args == {
        "model": "m", "prompt": "1+1=", "n": 4, "temperature": 0.7, "top_p": 0.8,
        "max_tokens": 16, "seed": 102, "logprobs": 5,
    }  # fmt: skip
    one = completion_args(sampled, "m", 0, offset=3, stream=True)
    assert (one["n"], one["seed"], one["stream"], one["logprobs"]) == (1, 105, True, 1)
    greedy = completion_args(GenerationRequest("g", "p", "x", 3, 0.0, 0.8, 16, None), "m", 5)
    assert (greedy["n"], greedy["temperature"], greedy["top_p"], greedy["seed"]) == (1, 0.0, 1.0, None)


def test_streamed_chunks_read_as_the_whole_choice():
    tops = [{"a": -0.1, "b": -2.5}, {"c": -0.3, "d": -1.5}, {"e": -0.05, "f": -3.0}]
    whole = choice_sample(_choice("abc", ["a", "c", "e"], [-0.1, -0.3, -0.05], tops), 2, "u")
    chunks = Chunks()
    assert chunks.add(_choice("a", ["a"], [-0.1], tops[:1], None)) == (-0.1,)
    chunks.add(_choice("bc", ["c", "e"], [-0.3, -0.05], tops[1:], "stop"))
    assert choice_sample(chunks.choice(), 2, "u") == whole
    assert whole.num_tokens == 3 and whole.finish_reason == "stop" and len(whole.entropies) == 3


def test_truncated_and_unreadable_choices():
    cut = choice_sample(_choice("ab", ["a"], [None], None, "length"), 5, "u")
    assert cut.finish_reason == "length" and cut.num_tokens == 1
    assert cut.logprobs[0] != cut.logprobs[0]  # a missing logprob is NaN, never 0
    with pytest.raises(BackendError, match="no logprobs"):
        choice_sample(SimpleNamespace(text="x", finish_reason="stop", logprobs=None), 5, "http://u")
    assert too_long(ValueError("This model's maximum context length is 64 tokens"))
    assert not too_long(ValueError("bad temperature"))
