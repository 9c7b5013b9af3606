"""Model registries: YAML files that map marker aliases (``7B``, ``0.2M``) to real models.

A registry is the only place that knows model ids, weights paths, costs and constraints
(greedy-only, tensor parallelism). Markers, specs and plans refer to models through it.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cascadec.errors import CascadecError, RegistryError
from cascadec.limits import (
    MAX_MODEL_LEN,
    MAX_SPEC_BYTES,
    MAX_TENSOR_PARALLEL,
    MIN_MODEL_LEN,
    Dtype,
    read_regular_file,
)
from cascadec.resources import data_dir, default_registry_path

PRICE_UNITS = {"USD per 1M tokens": 1e6, "USD per 1K tokens": 1e3}


class Price(BaseModel):
    """What an API model charges per prompt (input) and generated (output) token, and since when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, allow_inf_nan=False, description="Price of prompt tokens, in unit")
    output: float = Field(gt=0, allow_inf_nan=False, description="Price of generated tokens, in unit")
    unit: Literal["USD per 1M tokens", "USD per 1K tokens"] = "USD per 1M tokens"
    source: str = Field(min_length=1, description="Where the price comes from (a pricing page, a paper)")
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="When the price held, YYYY-MM-DD")
    note: str | None = Field(default=None, description="E.g. why a price is an assumption")

    def per_token(self) -> tuple[float, float]:
        """(input, output) in USD per token."""
        scale = PRICE_UNITS[self.unit]
        return self.input / scale, self.output / scale


class ModelEntry(BaseModel):
    """One model: what it is called, what a generated token costs, how to load it.

    The cost scale is ``params`` (self-hosted: the relative cost of one generated token) or
    ``price`` (an API model: USD per input and per output token); a priced model's generated
    token costs its output price (:attr:`cost_per_token`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Model id, e.g. Qwen/Qwen2.5-Math-7B-Instruct")
    aliases: tuple[str, ...] = Field(default=(), description="Marker aliases, e.g. ['7B']")
    path: str | None = Field(
        default=None, description="Local weights folder; relative paths are relative to the registry file"
    )
    params: float | None = Field(
        default=None, gt=0, description="Parameter count: the relative cost of one generated token"
    )
    price: Price | None = Field(default=None, description="API price per input and output token")
    greedy_only: bool = Field(default=False, description="Only k=1, T=0 may run on this model")
    tensor_parallel_size: int = Field(default=1, ge=1, le=MAX_TENSOR_PARALLEL)
    max_model_len: int | None = Field(default=None, ge=MIN_MODEL_LEN, le=MAX_MODEL_LEN)
    dtype: Dtype = "auto"
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    prompt: str | None = Field(
        default=None, description="Prompt template name used for this model by default"
    )
    trust_remote_code: bool = Field(
        default=False,
        description="Let the model's own Python code run when it loads (Hugging Face trust_remote_code); "
        "off unless a registry says so, and then a warning",
    )

    @model_validator(mode="after")
    def _has_a_cost(self) -> ModelEntry:
        if self.params is None and self.price is None:
            raise ValueError(f"model {self.id!r} needs params (self-hosted) or price (an API model)")
        return self

    @property
    def cost_per_token(self) -> float:
        """What one generated token costs: the output price per token, else ``params``."""
        if self.price is not None:
            return self.price.per_token()[1]
        assert self.params is not None
        return self.params


class ModelRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    family: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_one(cls, value: Any) -> int:
        """One rule, as a spec's: the integer 1 — never true, 1.0 or "1"."""
        if type(value) is not int or value != 1:
            raise ValueError(
                f"unsupported registry version {value!r}; this cascadec reads version 1 (an integer)"
            )
        return value

    prompt: str | None = Field(default=None, description="Default prompt template for every model here")
    models: tuple[ModelEntry, ...]
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> ModelRegistry:
        seen: dict[str, str] = {}
        for entry in self.models:
            for name in (entry.id, *entry.aliases):
                if name in seen and seen[name] != entry.id:
                    raise ValueError(f"name {name!r} is used by both {seen[name]} and {entry.id}")
                seen[name] = entry.id
        return self

    @model_validator(mode="after")
    def _one_cost_scale(self) -> ModelRegistry:
        unpriced = [e.id for e in self.models if e.price is None]
        if unpriced and len(unpriced) < len(self.models):
            raise ValueError(
                f"mixes priced and unpriced models: {', '.join(unpriced)} have no price; a registry is "
                "one cost scale: give every model a price (a self-hosted one its GPU cost per token, "
                "with source and date) or give none a price (params only)"
            )
        return self

    @property
    def priced(self) -> bool:
        """Costs are USD (every model has a price), not relative params."""
        return bool(self.models) and all(e.price is not None for e in self.models)

    # --- lookups -------------------------------------------------------------------------
    def get(self, name: str) -> ModelEntry | None:
        """The entry whose id or alias is ``name``, or None."""
        for entry in self.models:
            if name == entry.id or name in entry.aliases:
                return entry
        return None

    def aliases(self) -> list[str]:
        return [a for e in self.models for a in e.aliases]

    def close_matches(self, name: str) -> list[str]:
        names = self.aliases() + [e.id for e in self.models]
        return difflib.get_close_matches(name, names, n=3, cutoff=0.5)

    def resolve(self, name: str) -> ModelEntry:
        entry = self.get(name)
        if entry is None:
            hint = self.close_matches(name)
            more = f"; did you mean {' or '.join(hint)}?" if hint else f"; known: {', '.join(self.aliases())}"
            raise RegistryError(f"unknown model {name!r}{more}", code="E105")
        return entry

    def weights_path(self, entry: ModelEntry) -> str:
        """Where vLLM loads ``entry`` from: its local folder when it has one, else its id."""
        if entry.path is None:
            return entry.id
        p = Path(entry.path)
        if not p.is_absolute() and self.source not in ("<memory>", ""):
            p = Path(self.source).parent / p
        return str(p.resolve())


def load_registry(path: str | Path | None = None) -> ModelRegistry:
    """Load a registry file (default: the Qwen2.5-Math one).

    Errors are RegistryError: E300 (exit 1) for a malformed registry, E901 (exit 2) for one
    that cannot be read.
    """
    return _load_cached(str(Path(path).resolve()) if path is not None else str(default_registry_path()))


@cache
def _load_cached(path: str) -> ModelRegistry:
    """Messages say where, never what: a ``models:`` path may point at any file (a key file,
    a .env), and its contents must not reach a terminal or a log."""
    try:
        text = read_regular_file(path, MAX_SPEC_BYTES, "model registry").decode("utf-8")
    except UnicodeDecodeError:
        raise RegistryError(f"model registry {path} is not UTF-8 text") from None
    except CascadecError as exc:  # missing, unreadable, too big: I/O (E901, exit 2) in every command
        raise RegistryError(exc.message, code=exc.code, where=exc.where) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RegistryError(f"model registry {path} is not valid YAML{where}") from None
    except (yaml.YAMLError, RecursionError):
        raise RegistryError(f"model registry {path} is not valid YAML (or nests too deeply)") from None
    if not isinstance(raw, dict) or "models" not in raw:
        raise RegistryError(f"{path} is not a model registry (a YAML mapping with a 'models' list)")
    try:
        return ModelRegistry(**{str(k): v for k, v in raw.items()}, source=path)
    except (ValidationError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            raise RegistryError(f"model registry {path} nests too deeply") from None
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if first["type"] == "extra_forbidden":  # the key's name is the file's content: not shown
            where, msg = ".".join(loc[:-1]) or "top level", "an unknown key (not a registry field)"
        else:
            where, msg = ".".join(loc) or "models", first["msg"].removeprefix("Value error, ")
        raise RegistryError(f"model registry {path}: {where}: {msg}") from None


RegistryLike = ModelRegistry | str | Path | None


def resolve_registry(arg: RegistryLike, *, base: Path | None = None) -> ModelRegistry:
    """The one resolver of a ``--models`` / ``models:`` argument, for every command and API.

    A registry object, a shipped registry name (``zoo``), a YAML path (relative to ``base``
    first), or None (the default registry).
    """
    if isinstance(arg, ModelRegistry):
        return arg
    if arg is None:
        return load_registry()
    text = str(arg)
    candidates = [Path(text)] if Path(text).is_absolute() else [*([base / text] if base else []), Path(text)]
    if "/" not in text and not text.endswith((".yaml", ".yml")):
        candidates.append(named_registry(text))
    for path in candidates:
        if path.is_file():
            return load_registry(path)
    raise RegistryError(  # a registry that is not there is I/O (exit 2), whichever command asked
        f"cannot find model registry {text!r} (a shipped name such as zoo, or a YAML file)", code="E901"
    )


def named_registry(name: str) -> Path:
    """``zoo`` or ``qwen2.5-math`` → the shipped registry file of that name."""
    return data_dir("specs") / "models" / f"{name}.yaml"
