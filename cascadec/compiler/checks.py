"""Static checks every compiled strategy must pass before a GPU is touched.

Each check is ``(strategy, tier_paths, ctx) -> diagnostics``; ``tier_paths[i]`` is where
tier i was written. Errors (E104, E400) stop compilation; warnings (W102, W400) are returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from cascadec.compiler.context import Context, NodePath, report
from cascadec.compiler.cost import first_tier_floor, first_tier_ks, paths, worst_case
from cascadec.compiler.route import check_route
from cascadec.core import tier_rules
from cascadec.core.conditions import parse_condition
from cascadec.core.policies import ExploreAction, FinalAnswer
from cascadec.core.reachability import reachability
from cascadec.core.signals import LADDER_SIGNALS, signals_with
from cascadec.errors import Diagnostic
from cascadec.plan import PlanStrategy
from cascadec.spec.vote import StopRule, VotePolicy

Check = Callable[[PlanStrategy, tuple[NodePath, ...], Context], list[Diagnostic]]


def draw_counts(s: PlanStrategy, k: int) -> list[int]:
    """The sample counts a tier of ``k`` is judged at: ``k``, and under early stopping the end of
    every round too (an early-stopped tier decides on the samples it drew: agreement j/n)."""
    es = s.early_stop
    if es is None:
        return [k]
    r = es.round_size
    return sorted({min(r * j, k) for j in range(1, -(-k // r) + 1)})


def _read_later(s: PlanStrategy, i: int) -> bool:
    """Whether a tier after ``i`` reads earlier tiers' answers (``agrees_prev``: a second opinion),
    so tier ``i``'s answers are used even when it always escalates."""
    later = [c for t in s.tiers[i + 1 :] for c in (t.escalate_if, t.retry and t.retry.when) if c]
    return any(parse_condition(c).signals() & LADDER_SIGNALS for c in later)


def share_steps(s: PlanStrategy, n: int) -> bool:
    """Whether the weighted agreement of n drawn samples moves in steps of 1/n.

    A majority vote's weighted agreement is its agreement; a filter that keeps one sample gives
    0 or 1 (or, without logprobs, falls back to majority). Otherwise it is any share in [0, 1].
    """
    vote = s.vote
    if vote is None or VotePolicy(vote.policy) is VotePolicy.MAJORITY:
        return True
    if VotePolicy(vote.policy) is VotePolicy.BEST:  # one kept sample: 0 or 1
        return True
    return VotePolicy(vote.policy) is VotePolicy.FILTERED and math.ceil(vote.keep * n - 1e-9) <= 1


def tier_reach(s: PlanStrategy, text: str, k: int) -> str:
    """never / sometimes / always for a tier condition over every count the tier is judged at."""
    cond = parse_condition(text)
    seen = {reachability(cond, n, share_steps=share_steps(s, n)) for n in draw_counts(s, k)}
    return seen.pop() if len(seen) == 1 else "sometimes"


STEPPED = signals_with(lambda info: info.step == "1/k")  # agreement, margin, no_answer
SHARES = signals_with(lambda info: info.step == "share")  # weighted_agreement, hybrid


def _names(signals) -> str:
    names = list(signals)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _why(text: str, k: int) -> str:
    """The fact that makes a threshold unreachable, for the message."""
    signals = parse_condition(text).signals()
    if signals & STEPPED:
        return f" (at k={k} {_names(STEPPED)} move in steps of 1/{k})"
    if "entropy" in signals:
        return f" (at k={k} answer entropy is at most ln {k} = {math.log(k):.3f})"
    shares = [name for name in SHARES if name in signals]
    if shares:
        verb = "is" if len(shares) == 1 else "are"
        return (
            f" (at k={k} a majority vote's {_names(shares)} {verb} its agreement, in steps of 1/{k};"
            " one sample holds all of the weight or none)"
        )
    return ""


def check_greedy_k(s: PlanStrategy, where: tuple[NodePath, ...], ctx: Context) -> list[Diagnostic]:
    """T = 0 implies k = 1 (greedy samples are identical), for tiers and their retries."""
    out = []
    for i, (t, path) in enumerate(zip(s.tiers, where, strict=True)):
        finding = tier_rules.greedy_k(i, t.k, t.temperature)
        if finding is not None:
            out.append(report(ctx, finding, (*path, "k")))
        if t.retry and t.temperature == 0 and not t.retry.temperature:
            out.append(
                ctx.locator.diag(
                    "E104",
                    "retry at temperature 0 would add identical samples",
                    (*path, "retry"),
                    key=True,
                    fix="give the retry a temperature",
                )
            )
    return out


def check_thresholds(s: PlanStrategy, where: tuple[NodePath, ...], ctx: Context) -> list[Diagnostic]:
    """Every condition can fire with its tier's k; none makes a later tier unreachable."""
    out, n = [], len(s.tiers)
    for i, (t, path) in enumerate(zip(s.tiers, where, strict=True)):
        ks = first_tier_ks(s) if i == 0 else [t.k]
        if t.escalate_if is not None:
            reach = {k: tier_reach(s, t.escalate_if, k) for k in ks}
            never = [k for k, v in reach.items() if v == "never"]
            at = f"k={ks[0]}" if len(ks) == 1 else f"k in {never}"
            loc = (*path, "escalate_if")
            if len(never) == len(ks):
                out.append(
                    ctx.locator.diag(
                        "E400",
                        f"escalate_if {t.escalate_if!r} can never hold at {at}"
                        f"{_why(t.escalate_if, never[0])}: tier {i + 2} ({s.tiers[i + 1].model}) "
                        "can never run",
                        loc,
                    )
                )
            elif never:
                out.append(
                    ctx.locator.diag("W400", f"escalate_if {t.escalate_if!r} can never hold at {at}", loc)
                )
            elif (
                all(v == "always" for v in reach.values())
                and s.final_answer == FinalAnswer.LAST_TIER
                and not _read_later(s, i)
            ):
                out.append(
                    ctx.locator.diag(
                        "W400",
                        f"escalate_if {t.escalate_if!r} always holds at k={ks[0]}: "
                        "this tier's answers are never used",
                        loc,
                    )
                )
        if t.retry is not None and all(tier_reach(s, t.retry.when, k) == "never" for k in ks):
            out.append(
                ctx.locator.diag(
                    "W400",
                    f"retry.when {t.retry.when!r} can never hold at k={ks[-1]}{_why(t.retry.when, ks[-1])}",
                    (*path, "retry"),
                )
            )
        if t.explore is not None:
            reach_e = {tier_reach(s, t.explore.when, k) for k in ks}
            if reach_e == {"never"}:
                out.append(
                    ctx.locator.diag(
                        "W400",
                        f"explore.when {t.explore.when!r} can never hold at k={ks[-1]}",
                        (*path, "explore"),
                    )
                )
            elif reach_e == {"always"} and t.explore.action == ExploreAction.SKIP_TO_TOP and i < n - 2:
                out.append(
                    ctx.locator.diag(
                        "E400",
                        f"explore.when {t.explore.when!r} always holds: tiers {i + 2} to "
                        f"{n - 1} can never run",
                        (*path, "explore"),
                    )
                )
    return out


def check_cost_growth(s: PlanStrategy, where: tuple[NodePath, ...], ctx: Context) -> list[Diagnostic]:
    """Each tier's model costs at least as much per token as the one before (W102)."""
    costs = [(t.alias or t.model, t.cost_per_token) for t in s.tiers]
    return [report(ctx, f, (*where[f.tier or 0], "model")) for f in tier_rules.cost_drops(costs)]


def check_budget(s: PlanStrategy, where: tuple[NodePath, ...], ctx: Context) -> list[Diagnostic]:
    """A budget must at least pay for the first tier (E400); a worst case over it is cut at runtime (W400)."""
    b, out = s.budget, []
    if b is None:
        return out
    floor_samples, floor_cost = first_tier_floor(s)
    worst = worst_case(s)
    if b.max_samples_per_problem is not None:
        loc = ("strategy", "budget", "max_samples_per_problem")
        if floor_samples > b.max_samples_per_problem:
            out.append(
                ctx.locator.diag(
                    "E400",
                    f"budget cannot be met: the first tier alone draws {floor_samples} "
                    f"samples > max_samples_per_problem {b.max_samples_per_problem}",
                    loc,
                )
            )
        elif worst.samples > b.max_samples_per_problem:
            out.append(
                ctx.locator.diag(
                    "W400",
                    f"worst case draws {worst.samples:g} samples > "
                    f"max_samples_per_problem {b.max_samples_per_problem}: escalation stops "
                    "when the budget is spent",
                    loc,
                )
            )
    if b.max_cost_per_problem is not None:
        loc = ("strategy", "budget", "max_cost_per_problem")
        if floor_cost > b.max_cost_per_problem:
            out.append(
                ctx.locator.diag(
                    "E400",
                    f"budget cannot be met: the first tier alone can cost {floor_cost:.4g} "
                    f"(k x max_tokens x params) > max_cost_per_problem {b.max_cost_per_problem:g}",
                    loc,
                    fix="lower k or max_tokens, or raise the budget",
                )
            )
        elif worst.cost > b.max_cost_per_problem:
            out.append(
                ctx.locator.diag(
                    "W400",
                    f"worst-case cost {worst.cost:.4g} > max_cost_per_problem "
                    f"{b.max_cost_per_problem:g}: escalation stops when the budget is spent",
                    loc,
                )
            )
    return out


def check_policies(s: PlanStrategy, where: tuple[NodePath, ...], ctx: Context) -> list[Diagnostic]:
    """Early stopping that can never stop early; a first tier that adaptive k always skips."""
    out = []
    if s.early_stop is not None and all(t.k <= s.early_stop.round_size for t in s.tiers):
        out.append(
            ctx.locator.diag(
                "W400",
                f"early_stop.round_size {s.early_stop.round_size} >= every tier's k: "
                "voting can never stop early",
                ("strategy", "early_stop"),
            )
        )
    out.extend(_check_vote_and_stop(s, ctx))
    out.extend(_check_online(s, ctx))
    if s.adaptive_k is not None and len(s.tiers) > 1 and all(len(p) < len(s.tiers) for p in paths(s)):
        out.append(
            ctx.locator.diag(
                "W400",
                "every k the adaptive policy can choose reaches escalation_k_threshold: "
                "the first tier never runs",
                ("strategy", "adaptive_k"),
            )
        )
    return out


def _check_vote_and_stop(s: PlanStrategy, ctx: Context) -> list[Diagnostic]:
    """The exact rule needs a majority vote; a probabilistic rule must be able to stop before k."""
    es, out = s.early_stop, []
    if es is None:
        return out
    policy = s.vote.policy if s.vote is not None else VotePolicy.MAJORITY
    if es.rule is StopRule.DECIDED and policy is not VotePolicy.MAJORITY:
        out.append(
            ctx.locator.diag(
                "E400",
                f"early_stop.rule decided is exact only for majority votes, but vote.policy is {policy.value}: "
                "an unseen sample's weight is unbounded",
                ("strategy", "early_stop"),
                fix="use rule: weighted (or adaptive) with a weighted vote",
            )
        )
    need = es.unanimous_stop_at()
    sampled = [t.k for t in s.tiers if t.k > 1]
    if need is not None and sampled and all(need >= k for k in sampled):
        why = (
            f"the last {es.window} samples must agree"
            if es.rule is StopRule.ESC
            else f"even a unanimous vote needs {need} samples to reach confidence {es.confidence:g}"
        )
        out.append(
            ctx.locator.diag(
                "W400",
                f"early_stop.rule {es.rule.value} can never stop a tier early: {why}, "
                f"and no tier draws more than {max(sampled)}",
                ("strategy", "early_stop"),
            )
        )
    return out


def _check_online(s: PlanStrategy, ctx: Context) -> list[Diagnostic]:
    """DeepConf-online needs sampled tiers with more traces than its warm-up."""
    on = s.online
    if on is None:
        return []
    sampled = [t for t in s.tiers if t.temperature > 0 and t.k > 1]
    if not sampled:
        return [
            ctx.locator.diag(
                "E400",
                "online termination needs a sampled tier (k > 1, temperature > 0): "
                "greedy traces are all alike, there is nothing to stop",
                ("strategy", "online"),
                fix="remove online, or vote with mv / a cascade at a temperature such as 0.7",
            )
        ]
    if all(t.k <= on.warmup for t in sampled):
        return [
            ctx.locator.diag(
                "W400",
                f"online.warmup {on.warmup} >= every sampled tier's k: every trace is a warm-up "
                "trace and none can be stopped",
                ("strategy", "online"),
                fix=f"raise k above {on.warmup} or lower online.warmup",
            )
        ]
    return []


CHECKS: tuple[Check, ...] = (
    check_greedy_k,
    check_thresholds,
    check_cost_growth,
    check_budget,
    check_policies,
    check_route,
)
