"""The request bodies the server accepts, and the response bodies it returns (OpenAI's shapes).

Requests accept every field the OpenAI API defines for these endpoints, so any client works
unchanged; the sampling ones (``temperature``, ``top_p``, ``max_tokens``, ...) are accepted
and ignored — the strategy in ``model`` fixes how each tier samples. ``n`` must be 1 (the
cascade returns one answer). Unknown fields are a 422, as are malformed ones.
Extra, cascadec-specific: ``problem_id`` (samples are seeded by it, so a request draws exactly
the samples ``cascadec run`` draws for the row with that id; default: a hash of the problem text
and ``seed``) and one number field per data column the served specs read (:func:`with_columns`:
an adaptive-k ``column`` such as ``bucket`` or ``difficulty``, a router's numeric columns), named
as the column — ``extra_body={"bucket": 5}`` — a finite number (never a string or a bool), read
exactly as ``cascadec run`` reads that column of its table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from cascadec.errors import CascadecError

# a data column's value: a finite number (an int is one; a bool, a string, NaN or infinity is not)
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
DATA_FIELDS = "__data_fields__"  # class attribute: field name -> the data column it carries


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
    difficulty: Number | None = None  # cascadec: the data column ``difficulty`` (adaptive k)
    problem_id: str | None = Field(default=None, min_length=1, max_length=200)  # cascadec: seeds as `run`

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))

    def data(self) -> dict[str, float]:
        """The data columns the request gives (column -> value): what a run reads from its table."""
        fields = {"difficulty": "difficulty", **getattr(type(self), DATA_FIELDS, {})}
        return {col: v for name, col in fields.items() if (v := getattr(self, name)) is not None}


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


def with_columns(model_cls: type[_Request], columns: Iterable[str]) -> type[_Request]:
    """``model_cls`` with a number field per data column (``difficulty`` is always one).

    A column named as another request field (``model``, ``seed``, ``messages``, ...) could never
    be given: a CascadecError (E607) — the server refuses to start rather than serve the spec
    without its routing."""
    extra: dict[str, Any] = {}
    carried: dict[str, str] = {}
    fields = model_cls.model_fields
    for i, column in enumerate(sorted(set(columns) - {"difficulty"})):
        if column in fields or column in DATA_FIELDS:
            raise CascadecError(
                f"a served spec routes problems by the data column {column!r}, which is also a "
                f"request field of the OpenAI API: no request could give it; rename the column",
                code="E607",
            )
        name = f"data_{i}"
        extra[name] = (Number | None, Field(default=None, alias=column))
        carried[name] = column
    if not extra:
        return model_cls
    made = create_model(model_cls.__name__, __base__=model_cls, **extra)
    setattr(made, DATA_FIELDS, carried)
    return made


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
