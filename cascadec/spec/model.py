"""The typed strategy spec: what a user writes in YAML (and what a marker means).

A spec is raw intent, not yet resolved: aliases are unresolved, omitted values are ``None``
and the compiler fills them in (see ``cascadec/compiler``). Defaults, all documented here
and applied by the compiler's ``apply_defaults`` pass:

- ``escalate_if`` of a cascade tier: ``agreement < target_conf`` (``target_conf`` 0.75);
  of an entropy-cascade tier: ``entropy > target_entropy or no_answer > 0.5``
  (``target_entropy`` 0.6 nats: at k=4 a 3-1 split stays, 2-2 escalates); the last tier never escalates.
- entropy cascades also explore: a tier with k >= 3 and a tier between it and the top
  skips straight to the top when the answer entropy is maximal for its k (every sample differs).
- ``top_p`` 0.8 for sampled tiers (T > 0), 1.0 for greedy ones; ``max_tokens`` 2048, capped by
  the registry's ``max_model_len``; ``seed`` 0 for every tier (a sample's seed is fixed by the
  spec seed, model, problem, temperature and sample index: :mod:`cascadec.core.seeds`); ``prompt``: the spec's
  ``defaults.prompt``, else the registry's, else ``qwen-math-cot``; ``answer``: the spec's
  ``defaults.answer``, else the prompt's format (see :mod:`cascadec.core.answer_format`).
- A key that is absent takes its default; ``retry: null`` / ``explore: null`` switch an
  inherited rule off for that tier or strategy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from cascadec.core.answer_format import AnswerFormat
from cascadec.core.kinds import Kind
from cascadec.core.policies import AdaptiveKPolicy, ExploreAction, FinalAnswer
from cascadec.limits import MAX_K, MAX_NAME_CHARS, MAX_TIERS, MAX_TOKENS
from cascadec.spec.vote import EarlyStopFields, OnlineFields, VoteSpec

SPEC_VERSION = 1
DEFAULT_TARGET_CONF = 0.75
DEFAULT_TARGET_ENTROPY = 0.6
DEFAULT_TOP_P_SAMPLED = 0.8
DEFAULT_TOP_P_GREEDY = 1.0
DEFAULT_MAX_TOKENS = 2048
DEFAULT_SEED = 0
DEFAULT_PROMPT = "qwen-math-cot"
KIND_KEYS = tuple(k.value for k in Kind)

# YAML says `k: true`, `temperature: "0.7"` or `.inf` by mistake; lax pydantic would quietly take them.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _condition_text(value: Any) -> Any:
    """YAML ``true``/``false`` are the conditions ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class Defaults(_Spec):
    """Values every tier takes unless it sets its own."""

    max_tokens: Int | None = Field(
        None, ge=1, le=MAX_TOKENS, description="Generated tokens per sample (default 2048)"
    )
    top_p: Float | None = Field(None, gt=0, le=1, description="Default 0.8 when sampling, 1.0 when greedy")
    prompt: str | None = Field(None, min_length=1, description="Prompt template name (default: registry's)")
    answer: AnswerFormat | None = Field(
        None, description="How a completion's final answer is read (default: the prompt's format)"
    )
    seed: Int | None = Field(
        None,
        ge=0,
        description="Spec seed (default 0); with model, problem, temperature and sample index it fixes each sample's seed",
    )


class RetrySpec(_Spec):
    """Before escalating, sample the same tier again when ``when`` holds."""

    max: Int = Field(1, ge=1, le=16, description="Retries per tier")
    when: str = Field(description="Condition over the tier's signals, e.g. 'entropy > 1.0'")
    extra_k: Int = Field(ge=1, le=MAX_K, description="Samples added per retry")
    temperature: Float | None = Field(None, ge=0, le=2, description="Temperature of the retry samples")

    _when = field_validator("when", mode="before")(_condition_text)


class ExploreSpec(_Spec):
    """Entropy-aware exploration: skip to the top tier, or resample hotter, when ``when`` holds."""

    when: str | None = Field(None, description="Condition; default: answer entropy is maximal for k")
    action: ExploreAction = ExploreAction.SKIP_TO_TOP
    temperature: Float | None = Field(None, ge=0, le=2, description="raise_temperature: the new temperature")
    extra_k: Int = Field(
        0, ge=0, le=MAX_K, description="raise_temperature: samples to draw at it (0: the tier's k)"
    )

    _when = field_validator("when", mode="before")(_condition_text)

    @model_validator(mode="after")
    def _needs_temperature(self) -> ExploreSpec:
        if self.action == ExploreAction.RAISE_TEMPERATURE and self.temperature is None:
            raise ValueError("action raise_temperature needs a temperature")
        return self


class TierSpec(_Spec):
    """One tier: k samples from one model."""

    model: str = Field(min_length=1, description="Registry alias (7B) or full model id")
    k: Int = Field(1, ge=1, le=MAX_K, description="Samples")
    temperature: Float = Field(0.0, ge=0, le=2)
    top_p: Float | None = Field(None, gt=0, le=1)
    max_tokens: Int | None = Field(None, ge=1, le=MAX_TOKENS)
    seed: Int | None = Field(None, ge=0, description="Overrides the spec seed for this tier's samples")
    escalate_if: str | None = Field(None, description="Condition to move on to the next tier")
    retry: RetrySpec | None = None
    explore: ExploreSpec | None = None

    _escalate = field_validator("escalate_if", mode="before")(_condition_text)


class AdaptiveKSpec(_Spec):
    """How the first tier's k adapts per problem (see ``cascadec.plan.resolve_tiers``)."""

    policy: AdaptiveKPolicy = AdaptiveKPolicy.FIXED
    column: str = Field("difficulty", min_length=1, description="Per-problem difficulty column in [0, 1]")
    # the plan's bounds (cascadec.plan.AdaptiveK), so what the spec accepts the plan accepts
    buckets: tuple[tuple[Float, Annotated[Int, Field(ge=1, le=MAX_K)]], ...] = Field(
        (), max_length=MAX_TIERS * 4, description="[upper difficulty bound, k] pairs"
    )
    total_budget: Int | None = Field(None, ge=1, description="budget: first-tier samples for the whole table")
    min_k: Int = Field(1, ge=1)
    max_k: Int = Field(16, ge=1, le=MAX_K)
    escalation_k_threshold: Int | None = Field(
        None, ge=1, description="Cost-aware skip: drop the first tier when its k reaches this"
    )
    start_tiers: tuple[tuple[Float, Annotated[Int, Field(ge=0, lt=MAX_TIERS)]], ...] = Field(
        (),
        max_length=MAX_TIERS * 4,
        description="difficulty_buckets: [upper difficulty bound, index of the tier to start at] pairs",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AdaptiveKSpec:
        if self.policy == AdaptiveKPolicy.DIFFICULTY_BUCKETS:
            if not self.buckets and not self.start_tiers:
                raise ValueError(
                    "policy difficulty_buckets needs buckets: [[upper, k], ...] "
                    "and/or start_tiers: [[upper, tier], ...]"
                )
            for name, pairs in (("bucket", self.buckets), ("start_tiers", self.start_tiers)):
                bounds = [b for b, _ in pairs]
                if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                    raise ValueError(f"{name} bounds must be strictly ascending, got {bounds}")
            if any(k < 1 for _, k in self.buckets):
                raise ValueError("every bucket k must be >= 1")
            if any(t < 0 for _, t in self.start_tiers):
                raise ValueError("every start tier must be >= 0 (0 is the first tier)")
        elif self.start_tiers:
            raise ValueError("start_tiers needs policy difficulty_buckets")
        if self.policy == AdaptiveKPolicy.BUDGET and self.total_budget is None:
            raise ValueError("policy budget needs total_budget")
        if self.min_k > self.max_k:
            raise ValueError(f"min_k ({self.min_k}) is larger than max_k ({self.max_k})")
        return self


class EarlyStopSpec(EarlyStopFields):
    """Sample in rounds; stop once ``rule`` says the vote is settled (see ``cascadec.runtime.stopping``)."""


class OnlineSpec(OnlineFields):
    """Abort weak traces while they generate (DeepConf-online); the window is ``vote.window``."""


class BudgetSpec(_Spec):
    """Per-problem limits. Cost = generated tokens x the model's params (the registry's unit)."""

    max_cost_per_problem: Float | None = Field(None, gt=0)
    max_samples_per_problem: Int | None = Field(None, ge=1)


class RouteSpec(_Spec):
    """Learned routing: a router (``cascadec router train``) estimates each tier's P(right) from the
    problem text; each problem starts at the tier the policy picks, and ``router_p`` (the estimate
    for the current tier) may be read by conditions. The router is data (an ``.npz`` read without
    pickle): nothing here can run code."""

    router: str = Field(
        min_length=1, description="Router artifact (.npz); a relative path is relative to the spec"
    )
    hash: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Pin the router: compiling fails if its hash differs",
    )
    policy: Literal["threshold", "expected_cost", "none"] = Field(
        "threshold",
        description="threshold: start at the cheapest tier whose P(right) >= tau (else the last); "
        "expected_cost: the tier maximising P(right) - cost_weight x cost / the last tier's cost; "
        "none: start at the first tier (only router_p)",
    )
    tau: Float | None = Field(None, ge=0, le=1, description="threshold: the P(right) a tier must reach")
    cost_weight: Float | None = Field(
        None, ge=0, le=1000, description="expected_cost: P(right) points one last-tier cost is worth"
    )

    @model_validator(mode="after")
    def _policy_fields(self) -> RouteSpec:
        if self.policy == "threshold" and self.tau is None:
            raise ValueError("policy threshold needs tau (the P(right) a tier must reach), e.g. tau: 0.8")
        if self.policy == "expected_cost" and self.cost_weight is None:
            raise ValueError("policy expected_cost needs cost_weight, e.g. cost_weight: 0.5")
        if self.policy != "threshold" and self.tau is not None:
            raise ValueError(f"tau is for policy threshold, not {self.policy}")
        if self.policy != "expected_cost" and self.cost_weight is not None:
            raise ValueError(f"cost_weight is for policy expected_cost, not {self.policy}")
        return self


class StrategySpec(_Spec):
    """Exactly one of ``plain`` / ``mv`` / ``cascade`` / ``entropy_cascade``, plus policies."""

    plain: TierSpec | None = Field(None, description="One greedy answer: a model alias or {model: ...}")
    mv: TierSpec | None = Field(None, description="Majority vote over k samples of one model")
    cascade: tuple[TierSpec, ...] | None = Field(None, min_length=1, max_length=MAX_TIERS)
    entropy_cascade: tuple[TierSpec, ...] | None = Field(None, min_length=1, max_length=MAX_TIERS)
    target_conf: Float = Field(DEFAULT_TARGET_CONF, gt=0, le=1, description="Default escalate_if threshold")
    target_entropy: Float = Field(
        DEFAULT_TARGET_ENTROPY, gt=0, description="Entropy cascades' threshold (nats)"
    )
    retry: RetrySpec | None = Field(None, description="Retry rule for every tier that can escalate")
    explore: ExploreSpec | None = Field(None, description="Exploration for every tier that can skip")
    adaptive_k: AdaptiveKSpec | None = None
    early_stop: EarlyStopSpec | None = None
    vote: VoteSpec | None = Field(None, description="Voting policy: majority (default), weighted, filtered")
    online: OnlineSpec | None = Field(None, description="DeepConf-online: abort weak traces mid-generation")
    final_answer: FinalAnswer = FinalAnswer.LAST_TIER
    budget: BudgetSpec | None = None
    route: RouteSpec | None = Field(None, description="Learned routing: start tier per problem from a router")

    @field_validator("plain", mode="before")
    @classmethod
    def _plain_alias(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> StrategySpec:
        given = [key for key in KIND_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(f"a strategy needs exactly one of {', '.join(KIND_KEYS)}; {found}")
        if self.plain is not None and (self.plain.k != 1 or self.plain.temperature != 0):
            raise ValueError("plain runs one greedy answer (k 1, temperature 0); use mv to vote")
        return self

    @property
    def kind(self) -> str:
        return next(key for key in KIND_KEYS if getattr(self, key) is not None)

    @property
    def tiers(self) -> tuple[TierSpec, ...]:
        value = getattr(self, self.kind)
        return value if isinstance(value, tuple) else (value,)


class Spec(_Spec):
    """A strategy spec file (``version: 1``)."""

    version: Literal[1] = Field(description="Spec format version; this cascadec reads 1")
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.:/+-]+$",
        max_length=MAX_NAME_CHARS,
        description="Strategy key (default: its canonical marker)",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _integer_version(cls, value: Any) -> Any:
        """One rule: the version is the integer 1 — never true, 1.0 or "1" (E205 otherwise)."""
        if type(value) is not int:
            raise ValueError("the spec version is the integer 1")
        return value

    models: str | None = Field(None, description="Model registry: zoo, qwen2.5-math or a YAML path")
    defaults: Defaults = Defaults()
    strategy: StrategySpec
