"""The compiler passes: small pure functions ``(Draft, Context) -> (Draft, diagnostics)``.

They run in the order of ``PASSES``. Greedy-only enforcement and cost-aware skipping come
*before* defaults on purpose: a tier's default top_p depends on its final temperature, so a marker and a spec that skips to the same tiers
compile to the same plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cascadec.compiler.context import Context, NodePath, report
from cascadec.compiler.defaults import (
    DEFAULT_SEED,
    default_answer,
    default_escalate_if,
    default_explore,
    default_max_tokens,
    default_prompt,
    default_top_p,
    max_entropy_condition,
)
from cascadec.compiler.draft import Draft, DraftTier
from cascadec.compiler.route import compile_route
from cascadec.core import tier_rules
from cascadec.core.conditions import analyze_condition
from cascadec.core.kinds import CASCADES
from cascadec.core.policies import AdaptiveKPolicy
from cascadec.core.selection import start_tier
from cascadec.errors import Diagnostic
from cascadec.plan import AdaptiveK, Budget, EarlyStop, Exploration, PlanOnline, PlanVote, RetryRule
from cascadec.spec.model import ExploreSpec, RetrySpec

Pass = Callable[[Draft, Context], tuple[Draft, list[Diagnostic]]]


def canonical_condition(text: str, path: NodePath, ctx: Context) -> tuple[str | None, list[Diagnostic]]:
    """Condition text → canonical text, or None with located E210-E212 diagnostics."""
    line, column = ctx.locator.text_start(path)
    cond, diags = analyze_condition(text, source=ctx.locator.source, line=line, column=column)
    return (str(cond) if cond is not None else None), diags


def resolve_aliases(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """Model aliases → registry entries (E105 with close matches; W104 for unknown full ids)."""
    tiers, diags = [], []
    for i, t in enumerate(d.tiers):
        entry, finding = tier_rules.resolve_model(i, t.spec.model, ctx.registry)
        if finding is not None:
            diags.append(report(ctx, finding, (*t.path, "model")))
        if entry is None:
            tiers.append(t)
            continue
        tiers.append(replace(t, entry=entry, alias=entry.aliases[0] if entry.aliases else None))
    return replace(d, tiers=tuple(tiers)), diags


def enforce_greedy_only(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """Greedy-only models (the 72B) run k=1, T=0 whatever was asked, and say so (W103)."""
    tiers, diags = [], []
    for i, t in enumerate(d.tiers):
        assert t.entry is not None
        finding = tier_rules.greedy_only(i, t.spec.model, t.entry, t.k, t.temperature)
        if finding is not None:
            diags.append(report(ctx, finding, (*t.path, finding.field or "k")))
            t = replace(t, k=1, temperature=0.0)
        tiers.append(t)
    return replace(d, tiers=tuple(tiers)), diags


def skip_tiers(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """Cost-aware skipping: with a fixed k, drop the first tier when its k reaches escalation_k_threshold.

    With a per-problem policy the threshold stays in the plan and ``plan.resolve_tiers`` applies it.
    """
    policy = d.spec.strategy.adaptive_k
    if policy is None or policy.policy != AdaptiveKPolicy.FIXED or policy.escalation_k_threshold is None:
        return d, []
    if start_tier(d.tiers[0].k, policy.escalation_k_threshold, len(d.tiers)):
        dropped = d.tiers[0]
        note = f"dropped the {dropped.spec.model} tier: k{dropped.k} >= escalation_k_threshold"
        return replace(d, tiers=d.tiers[1:], notes=(*d.notes, note)), []
    return d, []


def normalize_kind(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """A cascade of one tier is a majority vote (W101 when it was written that way)."""
    if d.kind not in CASCADES or len(d.tiers) != 1:
        return d, []
    diags = []
    if d.written_tiers == 1:
        t = d.tiers[0]
        finding = tier_rules.single_tier_cascade(d.kind, [(t.spec.model, t.k, t.temperature)])
        if finding is not None:
            diags.append(report(ctx, finding, ("strategy", d.kind), key=True))
    return replace(d, kind="mv"), diags


def apply_defaults(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """top_p, max_tokens (capped by max_model_len), seeds, prompt and escalation conditions."""
    defaults, diags, tiers = d.spec.defaults, [], []
    base_seed = DEFAULT_SEED if defaults.seed is None else defaults.seed
    n = len(d.tiers)
    for i, t in enumerate(d.tiers):
        assert t.entry is not None
        top_p = default_top_p(t.temperature, t.spec.top_p or defaults.top_p)
        asked = t.spec.max_tokens or defaults.max_tokens
        max_tokens, cap = asked or default_max_tokens(t.entry), t.entry.max_model_len
        if cap is not None and max_tokens > cap:
            where = (*t.path, "max_tokens") if t.spec.max_tokens else ("defaults", "max_tokens")
            diags.append(
                ctx.locator.diag(
                    "W400",
                    f"max_tokens {asked} exceeds {t.entry.id}'s max_model_len {cap}; capped to {cap}",
                    where,
                )
            )
            max_tokens = cap
        seed = t.spec.seed if t.spec.seed is not None else base_seed  # never the position: core.seeds
        escalate_if = None
        if d.kind in CASCADES and i < n - 1:
            escalate_if, found = canonical_condition(
                t.spec.escalate_if
                or default_escalate_if(d.kind, d.spec.strategy.target_conf, d.spec.strategy.target_entropy),
                (*t.path, "escalate_if"),
                ctx,
            )
            diags.extend(found)
        elif t.spec.escalate_if is not None:
            diags.append(
                ctx.locator.diag(
                    "W400",
                    "escalate_if is ignored: this tier is the last one",
                    (*t.path, "escalate_if"),
                    key=True,
                )
            )
        tiers.append(replace(t, top_p=top_p, max_tokens=max_tokens, seed=seed, escalate_if=escalate_if))
    first = d.tiers[0].entry
    prompt = defaults.prompt or default_prompt(first, ctx.registry)
    answer = defaults.answer or default_answer(prompt)
    return replace(d, tiers=tuple(tiers), prompt=prompt, answer=answer), diags


def compile_policies(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """Adaptive k (a fixed k needs no policy), early stopping, budgets, as plan objects."""
    s, diags = d.spec.strategy, []
    adaptive = None
    if s.adaptive_k is not None and s.adaptive_k.policy != AdaptiveKPolicy.FIXED:
        a = s.adaptive_k
        adaptive = AdaptiveK(
            policy=a.policy,
            column=a.column,
            buckets=a.buckets,
            total_budget=a.total_budget,
            min_k=a.min_k,
            max_k=a.max_k,
            escalation_k_threshold=a.escalation_k_threshold,
            start_tiers=a.start_tiers,
        )
        first = d.tiers[0]
        assert first.entry is not None
        beyond = [t for _, t in a.start_tiers if t >= len(d.tiers)]
        if beyond:
            diags.append(
                ctx.locator.diag(
                    "E400",
                    f"start tier {beyond[0]} does not exist: the cascade has {len(d.tiers)} tiers "
                    f"(0 to {len(d.tiers) - 1})",
                    ("strategy", "adaptive_k", "start_tiers"),
                    key=True,
                    fix=f"use a tier index below {len(d.tiers)}",
                )
            )
        varies_k = a.policy == AdaptiveKPolicy.BUDGET or any(k != first.k for _, k in a.buckets)
        if varies_k and (first.temperature == 0 or first.entry.greedy_only):
            why = "is greedy-only" if first.entry.greedy_only else "samples at temperature 0"
            diags.append(
                ctx.locator.diag(
                    "E400",
                    f"adaptive k needs a sampled first tier, but {first.spec.model} "
                    f"{why}: every extra sample would be identical",
                    ("strategy", "adaptive_k"),
                    key=True,
                    fix="give the first tier a temperature such as 0.7",
                )
            )
    early = EarlyStop(**dict(s.early_stop)) if s.early_stop else None
    vote = PlanVote(**dict(s.vote)) if s.vote else None
    online = PlanOnline(**dict(s.online)) if s.online else None
    budget = None
    if s.budget is not None:
        budget = Budget(
            max_cost_per_problem=s.budget.max_cost_per_problem,
            max_samples_per_problem=s.budget.max_samples_per_problem,
        )
    return replace(d, adaptive_k=adaptive, early_stop=early, budget=budget, vote=vote, online=online), diags


def attach_rules(d: Draft, ctx: Context) -> tuple[Draft, list[Diagnostic]]:
    """Retry and exploration rules per tier: the tier's own, else the strategy's, else the kind's default."""
    s, n, diags, tiers = d.spec.strategy, len(d.tiers), [], []
    multi = d.kind in CASCADES and n > 1
    for i, t in enumerate(d.tiers):
        assert t.entry is not None
        can_escalate = not multi or i < n - 1
        retry, explore = None, None
        # --- retry
        spec_retry: RetrySpec | None = None
        path: NodePath = (*t.path, "retry")
        if "retry" in t.spec.model_fields_set:
            spec_retry = t.spec.retry
        elif (
            s.retry is not None
            and can_escalate
            and not t.entry.greedy_only
            and (t.temperature or s.retry.temperature)
        ):
            spec_retry, path = s.retry, ("strategy", "retry")
        if spec_retry is not None and t.entry.greedy_only:
            diags.append(
                ctx.locator.diag(
                    "W103", f"{t.spec.model} is greedy-only: its retry rule is dropped", path, key=True
                )
            )
        elif spec_retry is not None:
            when, found = canonical_condition(spec_retry.when, (*path, "when"), ctx)
            diags.extend(found)
            if when is not None:
                retry = RetryRule(
                    max=spec_retry.max,
                    when=when,
                    extra_k=spec_retry.extra_k,
                    temperature=spec_retry.temperature,
                )
        # --- exploration
        spec_explore: ExploreSpec | None = None
        path = (*t.path, "explore")
        if "explore" in t.spec.model_fields_set:
            spec_explore = t.spec.explore
            if spec_explore is not None and not (multi and i < n - 1):
                diags.append(
                    ctx.locator.diag("W400", "explore is ignored: no tier above this one", path, key=True)
                )
                spec_explore = None
        elif "explore" in s.model_fields_set:
            spec_explore, path = (
                (s.explore if multi and i < n - 1 and t.k > 1 else None),
                ("strategy", "explore"),
            )
        else:
            explore = default_explore(d.kind, i, n, t.k)
        if spec_explore is not None:
            explore, found = _exploration(spec_explore, t, path, ctx)
            diags.extend(found)
        tiers.append(replace(t, retry=retry, explore=explore))
    return replace(d, tiers=tuple(tiers)), diags


def _exploration(e: ExploreSpec, t: DraftTier, path: NodePath, ctx: Context):
    if e.when is None and t.k < 2:
        return None, [
            ctx.locator.diag(
                "W400", "explore needs k >= 2 to measure answer entropy; ignored", path, key=True
            )
        ]
    when, found = (
        canonical_condition(e.when, (*path, "when"), ctx) if e.when else (max_entropy_condition(t.k), [])
    )
    if when is None:
        return None, found
    return Exploration(when=when, action=e.action, temperature=e.temperature, extra_k=e.extra_k), found


PASSES: tuple[Pass, ...] = (
    resolve_aliases,
    enforce_greedy_only,
    skip_tiers,
    normalize_kind,
    apply_defaults,
    compile_policies,
    compile_route,
    attach_rules,
)
