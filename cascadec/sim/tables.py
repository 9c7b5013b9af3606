"""What the vectorised simulator reads: per-configuration tables, prefix sums, the outcome shape.

Both evaluators — the general state machine (:mod:`.machine`) and the tier-local sweep
(:mod:`.sweep`) — read a configuration's tiers from :class:`Tables`, a bank's running sums
from ``BankArrays.prefix`` and write an :class:`OutcomeArrays`; keeping these in one place keeps the two
evaluators reading the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from cascadec.core.conditions import (
    COMPARISONS,
    And,
    Bool,
    Compare,
    Condition,
    Not,
    Number,
    Or,
    Signal,
    parse_condition,
)
from cascadec.core.policies import ExploreAction, FinalAnswer
from cascadec.plan import PlanStrategy
from cascadec.runtime.outcomes import StopReason
from cascadec.sim.arrays import BIG, BankArrays

# the integer codes the arrays hold are indices into these tuples of the enums, never literals
POLICIES: tuple[FinalAnswer, ...] = tuple(FinalAnswer)  # Tables.policy
REASONS: tuple[StopReason, ...] = tuple(StopReason)  # OutcomeArrays.reason
EXPLORE_KINDS: tuple[ExploreAction | None, ...] = (None, *ExploreAction)  # Tables.x_kind (0: no exploration)
CONFIDENT, LAST_TIER, BUDGET = (REASONS.index(r) for r in StopReason)
NO_EXPLORATION = EXPLORE_KINDS.index(None)
SKIP_TO_TOP = EXPLORE_KINDS.index(ExploreAction.SKIP_TO_TOP)
RAISE_TEMPERATURE = EXPLORE_KINDS.index(ExploreAction.RAISE_TEMPERATURE)
POLICY_LAST_TIER, POLICY_MOST_CONFIDENT, POLICY_POOLED = (POLICIES.index(p) for p in FinalAnswer)


@cache
def condition_ast(text: str) -> Condition:
    return parse_condition(text)


def veval(node: Condition, sig: dict[str, np.ndarray], size: int):
    """Evaluate a condition AST over arrays of signals (the runtime evaluates it one problem at a time)."""
    if isinstance(node, Signal):
        return sig[node.name]
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Bool):
        return np.full(size, node.value)
    if isinstance(node, Compare):
        return np.asarray(COMPARISONS[node.op](veval(node.left, sig, size), veval(node.right, sig, size)))
    if isinstance(node, Not):
        return ~np.asarray(veval(node.operand, sig, size), dtype=bool)
    if isinstance(node, And | Or):
        parts = [np.asarray(veval(o, sig, size), dtype=bool) for o in node.operands]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node, And) else (out | part)
        return out
    raise TypeError(f"unknown condition node {type(node).__name__}")


@dataclass
class OutcomeArrays:
    """Per (configuration, problem): what the run would record. Arrays are [C, P]."""

    correct: np.ndarray  # float: 1, 0, or NaN without gold
    cost: np.ndarray
    samples: np.ndarray
    tokens: np.ndarray
    tiers_used: np.ndarray
    reason: np.ndarray  # index into REASONS
    reached: np.ndarray  # [C, P, T] the tier ran
    winner: np.ndarray  # answer class of the final answer (-1: none)

    @classmethod
    def empty(cls, C: int, P: int, T: int) -> OutcomeArrays:
        i64 = lambda: np.zeros((C, P), dtype=np.int64)  # noqa: E731
        return cls(
            correct=np.zeros((C, P)),
            cost=np.zeros((C, P)),
            samples=i64(),
            tokens=i64(),
            tiers_used=i64(),
            reason=i64(),
            reached=np.zeros((C, P, T), dtype=bool),
            winner=i64(),
        )

    def put(self, rows, part: OutcomeArrays) -> None:
        """Write ``part``'s configurations into rows ``rows`` (its tier axis may be shorter)."""
        for name in OutcomeArrays.__dataclass_fields__:
            if name != "reached":
                getattr(self, name)[rows] = getattr(part, name)
        self.reached[rows] = False
        self.reached[rows, :, : part.reached.shape[2]] = part.reached


class Tables:
    """Per configuration and tier: the numbers the state machine reads (padded to the longest cascade)."""

    def __init__(self, strategies: list[PlanStrategy], arrays: BankArrays):
        C = len(strategies)
        T = max(len(s.tiers) for s in strategies)
        self.C, self.T = C, T
        self.conds: list[str] = []
        ids: dict[str, int] = {}

        def cid(text: str | None) -> int:
            if text is None:
                return -1
            if text not in ids:
                ids[text] = len(self.conds)
                self.conds.append(text)
            return ids[text]

        # [C, T] per configuration and tier; a condition is an index into ``conds`` (-1: none),
        # a stream an index into the bank's streams
        z = lambda dtype=np.int64, fill=0: np.full((C, T), fill, dtype=dtype)  # noqa: E731
        self.ntiers = np.array([len(s.tiers) for s in strategies])
        self.k, self.stream, self.escalate_if = z(), z(), z(fill=-1)
        self.cost_per_token = z(np.float64, 0.0)
        self.retry_max, self.retry_when, self.retry_extra, self.retry_stream = z(), z(fill=-1), z(), z()
        # explore_kind: an index into EXPLORE_KINDS (NO_EXPLORATION: the tier has no rule)
        self.explore_kind, self.explore_when, self.explore_extra, self.explore_stream = (
            z(),
            z(fill=-1),
            z(),
            z(),
        )
        # [C] per configuration: early-stop round size (0: none), budget (no limit: BIG, inf), policy
        self.round_size = np.array([s.early_stop.round_size if s.early_stop else 0 for s in strategies])
        b = [s.budget for s in strategies]
        self.max_samples = np.array(
            [x.max_samples_per_problem if x and x.max_samples_per_problem else BIG for x in b]
        )
        self.max_cost = np.array(
            [x.max_cost_per_problem if x and x.max_cost_per_problem else np.inf for x in b]
        )
        self.policy = np.array([POLICIES.index(s.final_answer) for s in strategies])
        for c, s in enumerate(strategies):
            for t, tier in enumerate(s.tiers):
                self.k[c, t] = tier.k
                self.stream[c, t] = arrays.stream(tier.model, tier.temperature, s.answer)
                self.cost_per_token[c, t] = tier.cost_per_token
                self.escalate_if[c, t] = cid(tier.escalate_if)
                if tier.retry is not None:
                    rr = tier.retry
                    self.retry_max[c, t], self.retry_when[c, t], self.retry_extra[c, t] = (
                        rr.max,
                        cid(rr.when),
                        rr.extra_k,
                    )
                    temp = rr.temperature if rr.temperature is not None else tier.temperature
                    self.retry_stream[c, t] = arrays.stream(tier.model, temp, s.answer)
                if tier.explore is not None:
                    ex = tier.explore
                    self.explore_kind[c, t] = EXPLORE_KINDS.index(ex.action)
                    self.explore_when[c, t], self.explore_extra[c, t] = cid(ex.when), ex.extra_k
                    temp = ex.temperature if ex.temperature is not None else tier.temperature
                    self.explore_stream[c, t] = arrays.stream(tier.model, temp, s.answer)
        self.asts = [condition_ast(text) for text in self.conds]
