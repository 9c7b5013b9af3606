"""How a tier votes and when it stops sampling: the names the spec, plan and runtime share.

Why here: specs, the plan and the runtime all need these names; the spec layer is the lowest
that knows about strategies, so the enums live here once and the others import them.

Spec keys (strategy level)::

    vote: {policy: weighted, metric: logprob, temperature: 0.01, keep: 0.9, window: 8, tail: 8}
    early_stop: {rule: adaptive, confidence: 0.95, round_size: 2, window: 4}
    online: {warmup: 4, keep: 0.9}

``online`` switches on DeepConf-online termination (``cascadec.runtime.online``): the first
``warmup`` traces of a tier run to the end and set a stop threshold; later traces are aborted
while they generate once their running group confidence (``vote.window`` tokens) falls below it.

``window``/``tail`` are the token counts of the confidence groups (see
``cascadec.runtime.confidence``); they also define the confidence signals of conditions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict

DEFAULT_GROUP_WINDOW = 8  # tokens per confidence group: zoo traces are short (DeepConf: 2,048)
DEFAULT_TAIL = 8
DEFAULT_KEEP = 0.9
DEFAULT_STOP_CONFIDENCE = 0.95
DEFAULT_ESC_WINDOW = 4
# softmax temperature of logprob weights: chosen on zoo draws 737373 (k = 4, 8, 16) and 11
# (k = 4, 8), where it matches or beats majority for every model; see README "Confidence"
DEFAULT_LOGPROB_TEMPERATURE = 0.01
DEFAULT_WARMUP = 4  # DeepConf-online warm-up traces per tier (the paper: 16 of 512)
DEFAULT_ONLINE_KEEP = 0.9  # share of warm-up traces above the stop threshold

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]


class VotePolicy(StrEnum):
    """majority: one sample one vote; weighted: confidence-weighted; filtered: top share, then
    weighted; best: the single most confident sample's answer (best-of-n, e.g. by a reward
    model's ``score``: Qwen2.5-Math's RM@n)."""

    MAJORITY = "majority"
    WEIGHTED = "weighted"
    FILTERED = "filtered"
    BEST = "best"


class ConfidenceMetric(StrEnum):
    """The trace-level confidence that weighs, filters or stops a vote.

    ``logprob`` is the trace's mean chosen-token logprob (<= 0; needs no top-L records);
    ``score`` is the sample's external score (reward model, verifier, judge: a bank's ``score``
    column); the others are token confidences (>= 0; DeepConf, from the top-L logprobs).
    """

    LOGPROB = "logprob"
    SCORE = "score"
    MEAN = "mean"
    LOWEST_GROUP = "lowest_group"
    BOTTOM10 = "bottom10"
    TAIL = "tail"

    def is_token_confidence(self) -> bool:
        """Whether it is read from a trace's token records (DeepConf), not a per-sample number."""
        return self not in (ConfidenceMetric.LOGPROB, ConfidenceMetric.SCORE)


class StopRule(StrEnum):
    """decided: exact; adaptive: Beta/Dirichlet posterior; esc: window agreement; weighted: posterior on confidence."""

    DECIDED = "decided"
    ADAPTIVE = "adaptive"
    ESC = "esc"
    WEIGHTED = "weighted"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class VoteSpec(_Frozen):
    """How every tier of the strategy votes (and how its confidence signals are measured)."""

    policy: VotePolicy = Field(VotePolicy.MAJORITY, description="majority | weighted | filtered | best")
    metric: ConfidenceMetric = Field(
        ConfidenceMetric.LOGPROB,
        description="Trace confidence that weighs and filters: logprob | score | mean | lowest_group | "
        "bottom10 | tail",
    )
    temperature: Float | None = Field(
        None,
        gt=0,
        le=1000,
        description="Weights exp((score - best score) / temperature); default 0.01 for logprob, "
        "none (a sample weighs its raw confidence) for the token confidences",
    )
    keep: Float = Field(DEFAULT_KEEP, gt=0, le=1, description="filtered: share of the most confident traces")
    window: Int = Field(DEFAULT_GROUP_WINDOW, ge=1, le=65536, description="Tokens per confidence group")
    tail: Int = Field(DEFAULT_TAIL, ge=1, le=65536, description="Tokens of the tail confidence")

    def softmax_temperature(self) -> float | None:
        """The weights' softmax temperature (None: raw confidences, which are >= 0)."""
        if self.temperature is not None:
            return self.temperature
        return DEFAULT_LOGPROB_TEMPERATURE if self.metric is ConfidenceMetric.LOGPROB else None

    def signal_metric(self) -> ConfidenceMetric:
        """The token confidence the ``confidence`` and ``winner_conf`` signals average.

        The vote's metric when it is a token confidence; ``lowest_group`` under ``logprob``
        (the logprob has its own signal, ``mean_logprob``; these two signals stay >= 0).
        """
        return self.metric if self.metric.is_token_confidence() else ConfidenceMetric.LOWEST_GROUP


class EarlyStopFields(_Frozen):
    """The early-stopping keys shared by the spec and the plan."""

    round_size: Int = Field(2, ge=1, description="Samples asked per round")
    rule: StopRule = Field(StopRule.DECIDED, description="decided | adaptive | esc | weighted")
    confidence: Float = Field(
        DEFAULT_STOP_CONFIDENCE, gt=0.5, lt=1, description="adaptive/weighted: posterior to reach"
    )
    window: Int = Field(DEFAULT_ESC_WINDOW, ge=1, description="esc: consecutive agreeing samples")

    def unanimous_stop_at(self) -> int | None:
        """The fewest samples after which a unanimous vote stops (None: ``decided`` depends on k).

        adaptive/weighted: a unanimous vote of n has posterior 1 - 0.5^(n+1); esc: ``window``.
        """
        if self.rule is StopRule.ESC:
            return self.window
        if self.rule is StopRule.DECIDED:
            return None
        n = 1
        while 1.0 - 0.5 ** (n + 1) < self.confidence:
            n += 1
        return n


class OnlineFields(_Frozen):
    """DeepConf-online termination, shared by the spec and the plan (``cascadec.runtime.online``)."""

    warmup: Int = Field(
        DEFAULT_WARMUP, ge=1, le=1024, description="Traces per tier that run to the end and set the threshold"
    )
    keep: Float = Field(
        DEFAULT_ONLINE_KEEP,
        gt=0,
        le=1,
        description="Share of warm-up traces the threshold keeps (0.9: its 10th percentile of lowest groups)",
    )
