"""The request bodies the server accepts, and the response bodies it returns (OpenAI's shapes).

Requests accept every field the OpenAI API defines for these endpoints, so any client works
unchanged; the sampling ones (``temperature``, ``top_p``, ``max_tokens``, ...) are accepted
and ignored — the strategy in ``model`` fixes how each tier samples. ``n`` must be 1 (the
cascade returns one answer). Unknown fields are a 422, as are malformed ones.
Extra, cascadec-specific: ``difficulty`` (for strategies with adaptive k) and ``problem_id``
(samples are seeded by it, so a request draws exactly the samples ``cascadec run`` draws for
the row with that id; default: a hash of the problem text and ``seed``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = Field(default=1, ge=1, le=1)
    seed: int | None = None
    user: str | None = None
    # accepted for compatibility; the strategy decides how each tier samples
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: Any = None
    top_logprobs: int | None = None
    metadata: dict[str, Any] | None = None
    difficulty: float | None = None  # cascadec: feeds adaptive-k strategies
    problem_id: str | None = Field(default=None, min_length=1, max_length=200)  # cascadec: seeds as `run`

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


class ContentPart(BaseModel):
    """One part of a message's content: a text part's ``text`` must be a string (never 5)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    role: str
    content: str | list[ContentPart] | None = None


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None

    def problem(self) -> str:
        """The last user message's text: the problem the cascade answers."""
        for m in reversed(self.messages):
            if m.role == "user":
                if isinstance(m.content, list):
                    return "".join(p.text or "" for p in m.content if p.type == "text")
                return m.content or ""
        return ""


class CompletionRequest(_Request):
    prompt: str | list[str]
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None

    def problem(self) -> str:
        if isinstance(self.prompt, list):
            return self.prompt[0] if len(self.prompt) == 1 else ""
        return self.prompt


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_response(rid: str, model: str, text: str, finish: str, use: dict, cascade: dict) -> dict:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": use,
        "cascade": cascade,
    }


def completion_response(rid: str, model: str, text: str, finish: str, use: dict, cascade: dict) -> dict:
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
        "usage": use,
        "cascade": cascade,
    }


def chunk(
    kind: Literal["chat", "text"],
    rid: str,
    model: str,
    text: str | None,
    finish: str | None = None,
    *,
    role: bool = False,
    extra: dict | None = None,
) -> dict:
    """One streamed event; ``text=None`` with ``extra`` only makes the usage-only chunk."""
    created = int(time.time())
    if kind == "chat":
        delta: dict = {"role": "assistant"} if role else {}
        if text is not None:
            delta["content"] = text
        body = {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    else:
        body = {
            "object": "text_completion",
            "choices": [{"index": 0, "text": text or "", "finish_reason": finish}],
        }
    out = {"id": rid, "created": created, "model": model, **body}
    return {**out, **(extra or {})}
