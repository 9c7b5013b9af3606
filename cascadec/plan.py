"""The execution plan: the versioned JSON artifact between the compiler and the runtime.

Everything the runtime needs is here, already resolved and checked: model load settings,
tiers with their sampling parameters, escalation conditions (as canonical condition text),
retry and exploration rules, adaptive-k policy. The runtime never reads specs or registries.

Bytes are deterministic: sorted keys, floats as Python's shortest repr, a sha256 content hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascadec.core.answer_format import AnswerFormat
from cascadec.core.kinds import Kind
from cascadec.core.policies import AdaptiveKPolicy, ExploreAction, FinalAnswer
from cascadec.core.selection import select_tiers
from cascadec.errors import CascadecError, PlanError
from cascadec.limits import (
    MAX_DEPTH,
    MAX_K,
    MAX_MODEL_LEN,
    MAX_NAME_CHARS,
    MAX_PLAN_BYTES,
    MAX_RETRIES,
    MAX_STRATEGIES,
    MAX_TENSOR_PARALLEL,
    MAX_TIERS,
    MAX_TOKENS,
    MIN_MODEL_LEN,
    Dtype,
    read_regular_file,
)
from cascadec.spec.vote import EarlyStopFields, OnlineFields, VoteSpec

SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanModel(_Frozen):
    """How to load one model (copied from the registry at compile time)."""

    id: str
    path: str = Field(description="What the backend loads: a local weights folder or a hub id")
    params: float = Field(gt=0, description="Cost of one generated token")
    greedy_only: bool = False
    tensor_parallel_size: int = Field(default=1, ge=1, le=MAX_TENSOR_PARALLEL)
    max_model_len: int | None = Field(default=None, ge=MIN_MODEL_LEN, le=MAX_MODEL_LEN)
    dtype: Dtype = "auto"
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    trust_remote_code: bool = Field(
        default=False,
        exclude_if=lambda v: not v,  # absent unless set: plans without it keep their bytes and hash
        description="From the registry: the model's own code may run when it loads",
    )


class RetryRule(_Frozen):
    """Before escalating, sample the same tier again with ``extra_k`` more samples."""

    max: int = Field(ge=1, le=MAX_RETRIES, default=1)
    when: str = Field(description="Condition text over the tier's signals")
    extra_k: int = Field(ge=1, le=MAX_K)
    temperature: float | None = Field(default=None, ge=0, le=2)


class Exploration(_Frozen):
    """Entropy-aware exploration: when ``when`` holds, skip to the top tier or resample hotter."""

    when: str
    action: ExploreAction
    temperature: float | None = Field(default=None, ge=0, le=2)
    extra_k: int = Field(default=0, ge=0, le=MAX_K)


class PlanTier(_Frozen):
    model: str = Field(description="Key into Plan.models")
    alias: str | None = None
    k: int = Field(ge=1, le=MAX_K)
    temperature: float = Field(ge=0, le=2)
    top_p: float = Field(gt=0, le=1)
    max_tokens: int = Field(ge=1, le=MAX_TOKENS)
    seed: int
    cost_per_token: float = Field(gt=0)
    escalate_if: str | None = Field(default=None, description="Condition text; None on the last tier")
    retry: RetryRule | None = None
    explore: Exploration | None = None


class AdaptiveK(_Frozen):
    """How the first tier's k adapts per problem."""

    policy: AdaptiveKPolicy = AdaptiveKPolicy.FIXED
    column: str = "difficulty"
    buckets: tuple[tuple[float, Annotated[int, Field(ge=1, le=MAX_K)]], ...] = Field(
        max_length=MAX_TIERS * 4,
        default=(),
        description="(upper difficulty bound, k) pairs, ascending bounds",
    )
    total_budget: int | None = Field(
        default=None, ge=1, description="budget policy: total first-tier samples"
    )
    min_k: int = Field(default=1, ge=1, le=MAX_K)
    max_k: int = Field(default=16, ge=1, le=MAX_K)
    escalation_k_threshold: int | None = Field(
        default=None, ge=1, description="cost-aware skip: drop the first tier when its k reaches this"
    )
    start_tiers: tuple[tuple[float, Annotated[int, Field(ge=0, lt=MAX_TIERS)]], ...] = Field(
        max_length=MAX_TIERS * 4,
        default=(),
        exclude_if=lambda v: not v,  # absent unless set: plans without it keep their bytes and hash
        description="difficulty_buckets: (upper difficulty bound, index of the tier a problem starts at)",
    )


class EarlyStop(EarlyStopFields):
    """Sample a tier in rounds and stop as soon as ``rule`` says the vote is settled."""


class PlanVote(VoteSpec):
    """How every tier votes and measures its confidence signals (absent: majority, defaults)."""


class PlanOnline(OnlineFields):
    """DeepConf-online termination of every sampled tier (``cascadec.runtime.online``)."""


class Budget(_Frozen):
    max_cost_per_problem: float | None = Field(default=None, gt=0)
    max_samples_per_problem: int | None = Field(default=None, ge=1)


RoutePolicy = Literal["threshold", "expected_cost", "none"]


class PlanRoute(_Frozen):
    """Learned routing (``cascadec.router``): where each problem starts, from the router's
    estimate of P(right) per tier; and the ``router_p`` signal. Resolved by the compiler: the
    router's content hash (checked whenever it loads) and, per tier, the head that estimates it."""

    router: str = Field(description="Path of the router artifact (.npz, loaded without pickle)")
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="The router's content hash")
    policy: RoutePolicy = Field(
        default="threshold",
        description="threshold: the cheapest tier whose P(right) >= tau; expected_cost: the tier "
        "maximising P(right) - cost_weight x its cost / the last tier's; none: start at the first "
        "tier (router_p only)",
    )
    tau: float | None = Field(default=None, ge=0, le=1, description="threshold: P(right) to start at a tier")
    cost_weight: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="expected_cost: points of P(right) one top-tier cost is worth",
    )
    heads: tuple[str, ...] = Field(
        min_length=1, max_length=MAX_TIERS, description="Per tier: the router head estimating its P(right)"
    )
    columns: tuple[str, ...] = Field(default=(), description="Data columns the router reads")


class PlanStrategy(_Frozen):
    key: str = Field(
        max_length=MAX_NAME_CHARS, description="Stable id: the canonical marker, or the spec's name"
    )
    marker: str | None = Field(
        default=None, description="Canonical marker, when the strategy can be written as one"
    )
    kind: Kind
    tiers: tuple[PlanTier, ...] = Field(min_length=1, max_length=MAX_TIERS)
    prompt: str = "qwen-math-cot"
    answer: AnswerFormat = Field(
        default=AnswerFormat.BOXED_OR_FINAL_LINE, description="How a completion's final answer is read"
    )
    final_answer: FinalAnswer = FinalAnswer.LAST_TIER
    adaptive_k: AdaptiveK | None = None
    early_stop: EarlyStop | None = None
    budget: Budget | None = None
    vote: PlanVote | None = None
    online: PlanOnline | None = Field(
        default=None,
        exclude_if=lambda v: v is None,  # absent unless set: plans without it keep their bytes and hash
        description="DeepConf-online: abort weak traces mid-generation",
    )
    route: PlanRoute | None = Field(
        default=None,
        exclude_if=lambda v: v is None,  # absent unless set: plans without it keep their bytes and hash
        description="Learned routing: start tier per problem from a router's P(right)",
    )


class Plan(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    hash: str = ""
    source: str = ""
    models: dict[str, PlanModel]
    strategies: tuple[PlanStrategy, ...] = Field(min_length=1, max_length=MAX_STRATEGIES)

    def strategy(self, key: str) -> PlanStrategy:
        for s in self.strategies:
            if s.key == key or s.marker == key:
                return s
        raise PlanError(f"plan has no strategy {key!r}; it has {', '.join(s.key for s in self.strategies)}")


# --- adaptive k and routing: pure functions the runtime calls, so it never interprets policies --
def data_columns(strategies: Sequence[PlanStrategy]) -> set[str]:
    """The data columns the strategies read per problem: adaptive-k difficulty, router inputs."""
    out = {
        s.adaptive_k.column
        for s in strategies
        if s.adaptive_k and s.adaptive_k.policy != AdaptiveKPolicy.FIXED
    }
    for s in strategies:
        if s.route is not None:
            out.update(s.route.columns)
    return out


def route_key(route: PlanRoute, head: str) -> str:
    """The problem feature holding the router's P(right) of ``head`` (set by whoever predicts:
    the runtime, the simulator, the server; cross-fitted values by calibrate)."""
    return f"router:{route.hash}:{head}"


def tier_probabilities(
    strategy: PlanStrategy, features: Mapping[str, float | None]
) -> tuple[float, ...] | None:
    """The router's P(right) of each of the strategy's tiers for one problem (None without a route)."""
    route = strategy.route
    if route is None:
        return None
    out = []
    for head in route.heads:
        value = features.get(route_key(route, head))
        if value is None:
            raise PlanError(
                f"strategy {strategy.key!r} routes by router {route.hash[:19]}…, but the problem has "
                f"no prediction for {head!r} (predict with cascadec.runtime.router_features)"
            )
        out.append(float(value))
    return tuple(out)


def route_start(strategy: PlanStrategy, probabilities: Sequence[float] | None) -> int:
    """Index of the tier the route sends a problem to (0 without a route or a prediction)."""
    route = strategy.route
    if route is None or probabilities is None or route.policy == "none":
        return 0
    last = len(strategy.tiers) - 1
    if route.policy == "threshold":
        tau = 0.5 if route.tau is None else route.tau
        return next((i for i, p in enumerate(probabilities) if p >= tau), last)
    # expected_cost: maximise P(right) - lambda x cost / the last tier's cost (ties: the cheaper tier)
    costs = [t.k * t.cost_per_token for t in strategy.tiers]
    weight = 0.0 if route.cost_weight is None else route.cost_weight
    utility = [p - weight * c / costs[-1] for p, c in zip(probabilities, costs, strict=True)]
    return max(range(len(utility)), key=lambda i: (utility[i], -i))


def resolve_problems(
    strategy: PlanStrategy, features: Sequence[Mapping[str, float | None]]
) -> list[tuple[PlanTier, ...]]:
    """:func:`resolve_tiers` from each problem's features (its difficulty column and, for a routed
    strategy, the router's predictions): what the runtime, the simulator and the server call."""
    column = strategy.adaptive_k.column if strategy.adaptive_k else "difficulty"
    routes = [tier_probabilities(strategy, f) for f in features] if strategy.route is not None else None
    return resolve_tiers(strategy, [f.get(column) for f in features], routes)


def resolve_tiers(
    strategy: PlanStrategy,
    difficulties: Sequence[float | None],
    routes: Sequence[Sequence[float] | None] | None = None,
) -> list[tuple[PlanTier, ...]]:
    """Per problem, the tiers it will run: adaptive k applied to the first tier, then its difficulty's
    start tier, the route's start tier (``routes``: per problem the router's P(right) per tier)
    and cost-aware skipping — the latest start of them all."""
    policy = strategy.adaptive_k
    if policy is None or policy.policy == AdaptiveKPolicy.FIXED:
        ks = [strategy.tiers[0].k] * len(difficulties)
    elif policy.policy == AdaptiveKPolicy.DIFFICULTY_BUCKETS:
        ks = [bucket_k(policy, d, strategy.tiers[0].k) for d in difficulties]
    else:
        ks = _budget_ks(policy, difficulties)
    if routes is None:
        routes = [None] * len(difficulties)
    out = []
    for k, d, p in zip(ks, difficulties, routes, strict=True):
        first = strategy.tiers[0]
        tiers = (first if k == first.k else first.model_copy(update={"k": k}), *strategy.tiers[1:])
        threshold = policy.escalation_k_threshold if policy else None
        floor = max(bucket_start(policy, d), route_start(strategy, p))
        out.append(select_tiers(tiers, k, threshold, floor))
    return out


def _bucket(pairs: Sequence[tuple[float, int]], difficulty: float | None, default: int) -> int:
    """The value of the first bucket whose upper bound the difficulty does not exceed (the last
    bucket's above every bound; ``default`` without a difficulty or buckets)."""
    if difficulty is None or not pairs:
        return default
    for upper, value in pairs:
        if difficulty <= upper:
            return value
    return pairs[-1][1]


def bucket_k(policy: AdaptiveK, difficulty: float | None, default: int) -> int:
    return _bucket(policy.buckets, difficulty, default)


def bucket_start(policy: AdaptiveK | None, difficulty: float | None) -> int:
    """Index of the tier a problem of this difficulty starts at (0 without a start-tier policy)."""
    if policy is None or policy.policy != AdaptiveKPolicy.DIFFICULTY_BUCKETS:
        return 0
    return _bucket(policy.start_tiers, difficulty, 0)


def _budget_ks(policy: AdaptiveK, difficulties: Sequence[float | None]) -> list[int]:
    """Share ``total_budget`` samples in proportion to difficulty, within [min_k, max_k]."""
    n = len(difficulties)
    if n == 0:
        return []
    weights = [0.5 if d is None else max(float(d), 0.05) for d in difficulties]
    budget = policy.total_budget or policy.min_k * n
    total_w = sum(weights)
    ks = [min(policy.max_k, max(policy.min_k, int(budget * w / total_w))) for w in weights]
    # hand out what rounding left, hardest problems first, never exceeding the budget
    spare = budget - sum(ks)
    for i in sorted(range(n), key=lambda i: (-weights[i], i)):
        if spare <= 0:
            break
        if ks[i] < policy.max_k:
            ks[i] += 1
            spare -= 1
    return ks


# --- bytes ----------------------------------------------------------------------------
def _canonical_bytes(data: dict) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def content_hash(plan: Plan) -> str:
    """sha256 of the canonical bytes without ``hash`` and ``source``: where a plan came from
    (a marker, its YAML twin, a path spelled differently) does not change what it runs."""
    body = plan.model_dump(mode="json")
    body.pop("hash", None)
    body.pop("source", None)
    return "sha256:" + hashlib.sha256(_canonical_bytes(body).encode()).hexdigest()


def seal(plan: Plan) -> Plan:
    """The same plan with its content hash filled in."""
    return plan.model_copy(update={"hash": content_hash(plan)})


def plan_to_json(plan: Plan) -> str:
    """Deterministic JSON text (same plan ⇒ same bytes)."""
    return _canonical_bytes(seal(plan).model_dump(mode="json"))


def plan_from_json(text: str, source: str = "<plan>") -> Plan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"not a JSON plan: {exc.msg}", where=f"{source}:{exc.lineno}:{exc.colno}") from None
    except RecursionError:
        raise PlanError(f"not a plan: nested deeper than {MAX_DEPTH} levels", where=f"{source}:1:1") from None
    if _depth(data) > MAX_DEPTH:
        raise PlanError(f"not a plan: nested deeper than {MAX_DEPTH} levels", where=f"{source}:1:1")
    if not isinstance(data, dict) or "strategies" not in data:
        raise PlanError("not a cascadec plan (no 'strategies')", where=f"{source}:1:1")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise PlanError(
            f"plan schema_version {version!r} is not supported "
            f"(this cascadec reads schema_version {SCHEMA_VERSION}); recompile the spec",
            code="E402",
            where=f"{source}:1:1",
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"invalid plan at {where}: {first['msg']}", where=f"{source}:1:1") from None
    if not plan.hash:
        raise PlanError(
            "plan has no hash: a plan file is verified, never trusted; write plans with `cascadec compile`",
            where=f"{source}:1:1",
        )
    if plan.hash != content_hash(plan):
        raise PlanError("plan content does not match its hash (edited by hand?)", where=f"{source}:1:1")
    return plan


def _depth(value: object, limit: int = MAX_DEPTH + 1) -> int:
    """Nesting depth of parsed JSON, counted no deeper than ``limit``."""
    depth, level = 0, [value]
    while level and depth < limit:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth + (1 if level else 0)


def load_plan(path: str | Path) -> Plan:
    try:
        text = read_regular_file(path, MAX_PLAN_BYTES, "plan").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"not a JSON plan: not UTF-8 (byte {exc.start})", where=f"{path}:1:1") from None
    except CascadecError as exc:
        raise PlanError(exc.message, code=exc.code, where=exc.where) from None
    return plan_from_json(text, source=str(path))
