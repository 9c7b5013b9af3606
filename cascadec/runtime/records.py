"""Typed run artifacts: the sample, tier and problem records and the run manifest.

These models are the one definition of what a run directory holds. Journals are their JSON,
``problems.parquet`` / ``samples.parquet`` use the Arrow schema derived from them (real nested
types: ``list<struct>`` per tier, ``list<string>`` of models — no JSON inside strings), and
``cascadec schema results`` exports their JSON Schema. They are versioned like the plan: a
reader of another ``RESULTS_SCHEMA_VERSION`` refuses it clearly (see
:func:`cascadec.runtime.results.load_results`). Adding an optional field keeps old files
readable; anything else bumps the version.

Token-level confidence: a :class:`SampleRecord` carries ``token_logprobs`` (the chosen
token's logprob at each position) and ``token_confidence`` (DeepConf's per-token confidence,
minus the mean of the top-L logprobs), optional ``list<float32>`` columns (float32: half the
bytes, ample for logprobs), so every confidence signal is computed again from a bank
(:mod:`cascadec.runtime.confidence`).
"""

from __future__ import annotations

import math
import struct
import types
import typing
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from cascadec.core.signals import SIGNALS
from cascadec.plan import PlanModel
from cascadec.runtime.outcomes import Decision, FinishReason, Phase, RunStatus, StopReason
from cascadec.spec.vote import VotePolicy

RESULTS_SCHEMA_VERSION = 2
FLOAT32 = "float32"


def _to_float32(value: float) -> float:
    """The nearest float32 (so a record reads back from parquet exactly as it was written)."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


to_float32 = _to_float32  # public: what a live monitor judges is what the record will hold

Float32 = Annotated[float, AfterValidator(_to_float32), FLOAT32]  # stored as Arrow float32
SCHEMA_METADATA_KEY = b"cascadec.results_schema_version"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleRecord(Record):
    """One generated sample, as journaled and as one row of ``samples.parquet``."""

    id: str  # the problem
    strategy: str  # the plan's strategy key
    tier: int  # index into the strategy's tiers (as compiled)
    model: str
    round: int  # 0, 1, ... asks on this tier (rounds, retries, explorations)
    phase: Phase
    sample_index: int  # 0, 1, ... per (problem, strategy, tier): the bank index in replay
    text: str
    answer: str | None  # None: no answer, truncated or aborted (it does not vote)
    num_tokens: int
    finish_reason: FinishReason
    mean_logprob: float | None
    mean_entropy: float | None
    temperature: float | None = None  # what it was sampled at (retries/explorations may differ)
    seconds: float = 0.0
    token_logprobs: list[Float32 | None] | None = None  # per token (null: the engine gave -inf/NaN)
    token_confidence: list[Float32 | None] | None = None  # per token: -mean of the top-L logprobs
    score: float | None = None  # external score (reward model, verifier): from an imported bank
    cost: float | None = None  # recorded cost (an API's price); None: num_tokens x cost per token

    @property
    def votes(self) -> bool:
        return self.answer is not None


class VoteCount(Record):
    answer: str
    count: int


Signals = create_model(
    "Signals",
    __base__=Record,
    __doc__="A tier's signals (the registry in cascadec.core.signals); None where undefined (no logprobs).",
    **{name: (float | None, Field(None, description=info.description)) for name, info in SIGNALS.items()},
)


class VoteWeight(Record):
    answer: str
    weight: float


class TierRecord(Record):
    """One tier that ran for a problem: what it drew, its vote, its signals, its decision."""

    tier: int  # original tier index in the strategy
    model: str
    k: int  # samples drawn (rounds, retries and explorations included)
    rounds: int
    retries: int
    explored: bool
    early_stopped: bool
    decision: Decision
    votes: list[VoteCount]  # clusters in rank order
    signals: Signals  # type: ignore[valid-type]
    vote: VotePolicy | None = None  # the policy the winner came from (majority if confidences lacked)
    weights: list[VoteWeight] | None = None  # weighted/filtered votes: clusters in their rank order


class PathStep(Record):
    tier: int
    decision: Decision


class ProblemRecord(Record):
    """One problem under one strategy: one row of ``problems.parquet``."""

    id: str
    strategy: str
    final_answer: str | None
    gold: str | None
    correct: bool | None  # None without gold
    tiers_used: int
    path: list[PathStep]  # (tier, decision) per tier that ran, in order
    models: list[str]
    stop_reason: StopReason
    tiers: list[TierRecord]
    samples: int
    tokens: int
    cost: float  # Σ tokens × cost_per_token
    seconds: float  # generation time, each batch's wall time shared by tokens
    ungraded: bool = False  # the grader timed out on a pair of this problem's answers (see manifest)
    grading_over_budget: bool = False  # its grading budget ran out: remaining pairs left ungraded


class ModelStats(Record):
    """What one model did in one session (load count, batches, tokens, seconds)."""

    loads: int = 0
    batches: int = 0
    requests: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0  # generating
    load_seconds: float = 0.0
    reused_samples: int = 0  # served from the journal on resume
    early_stops: int = 0  # tiers that ended before their k samples
    aborted_samples: int = 0  # samples stopped mid-generation


class Session(Record):
    """One invocation of the run (the first, then each ``--resume``)."""

    started: str
    resumed: bool
    finished: str | None = None
    models: dict[str, ModelStats] = Field(default_factory=dict)


class Totals(Record):
    problems: int
    samples: int
    tokens: int
    cost: float
    accuracy: float | None
    loads: dict[str, int]
    ungraded_pairs: int = 0  # answer pairs the grader could not decide in time (never counted "equal")
    ungraded_problems: int = 0  # problems with such a pair (flagged ``ungraded`` in problems.parquet)
    pairs_over_budget: int = 0  # pairs never graded because their problem's grading budget was spent
    over_budget_problems: int = 0  # problems flagged ``grading_over_budget`` in problems.parquet


class RunInfo(Record):
    """What the run was asked to do, fixed when it starts."""

    plan_source: str | None = None
    problems: int
    backend: str
    equivalence: str
    grader_timeout: float | None = None  # seconds per answer pair
    grading_budget: float | None = None  # seconds of grading per problem (None: unbounded)
    batch_size: int
    schedule: str = "continuous"  # or "barrier" (see runtime.executor)
    models: dict[str, PlanModel]
    seeds: dict[str, list[int]]
    versions: dict[str, str]
    data_source: str | None = None
    limit: int | None = None
    column: str | None = None


class Manifest(Record):
    """``manifest.json``: written only by :class:`cascadec.runtime.results.RunStore`."""

    schema_version: Literal[2] = RESULTS_SCHEMA_VERSION
    status: RunStatus
    plan_hash: str
    data_fingerprint: str
    created: str
    run: RunInfo
    sessions: list[Session]
    totals: Totals | None = None


RESULT_MODELS: dict[str, type[Record]] = {
    "ProblemRecord": ProblemRecord,
    "SampleRecord": SampleRecord,
    "Manifest": Manifest,
}


def results_json_schema() -> dict[str, Any]:
    """JSON Schema of every result artifact (``cascadec schema results``)."""
    from pydantic.json_schema import models_json_schema

    refs, schema = models_json_schema(
        [(m, "validation") for m in RESULT_MODELS.values()], title="cascadec run results"
    )
    schema["type"] = "object"
    schema["anyOf"] = [refs[(m, "validation")] for m in RESULT_MODELS.values()]
    schema["description"] = (
        f"Records of a cascadec run directory, results schema version {RESULTS_SCHEMA_VERSION}: "
        "ProblemRecord (problems.parquet, problems.jsonl), SampleRecord (samples.parquet, "
        "samples.jsonl), Manifest (manifest.json)."
    )
    return schema


# --- Arrow schema, derived from the models --------------------------------------------------
def arrow_schema(model: type[BaseModel]):
    """The Arrow schema of a record model: nested models are structs, lists are lists."""
    import pyarrow as pa

    fields = [
        pa.field(name, _arrow_type(f.annotation), nullable=True) for name, f in model.model_fields.items()
    ]
    if model is SampleRecord:
        fields.insert(9, pa.field("votes", pa.bool_()))  # derived: the sample has an answer
    return pa.schema(fields, metadata={SCHEMA_METADATA_KEY: str(RESULTS_SCHEMA_VERSION).encode()})


def _arrow_type(annotation: Any):
    import pyarrow as pa

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        return pa.float32() if FLOAT32 in meta else _arrow_type(base)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _arrow_type(inner)
    if origin is list:
        return pa.list_(_arrow_type(typing.get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct([pa.field(n, _arrow_type(f.annotation)) for n, f in annotation.model_fields.items()])
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return pa.string()
    simple = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    if annotation in simple:
        return simple[annotation]
    raise TypeError(f"no Arrow type for {annotation!r}")  # a new field type: extend this map
