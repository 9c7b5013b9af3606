"""``cascadec explain``: a plan as rich tables, with a dry-run cost estimate per problem.

Worst case is a bound (every tier and retry runs at max_tokens). Expected cost rests on two
stated assumptions (an escalation rate per tier, tokens per sample as a share of max_tokens)
until a sample bank gives measured ones (``explain --bank``: reach, escalation, samples and cost
per tier simulated on the bank, ``cascadec.sim.estimate``). Tier costs are in top-model answers.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from cascadec.compiler.cost import expected, first_tier_ks, worst_case
from cascadec.core.policies import AdaptiveKPolicy, ExploreAction
from cascadec.core.selection import worst_case_samples
from cascadec.plan import EarlyStop, Plan, PlanStrategy, PlanTier
from cascadec.spec.vote import DEFAULT_GROUP_WINDOW


def _retry(t: PlanTier) -> str:
    if t.retry is None:
        return ""
    hot = f" at T={t.retry.temperature:g}" if t.retry.temperature is not None else ""
    return f"{t.retry.when} → +{t.retry.extra_k}{hot} (x{t.retry.max})"


def _explore(t: PlanTier) -> str:
    if t.explore is None:
        return ""
    what = (
        "skip to top"
        if t.explore.action == ExploreAction.SKIP_TO_TOP
        else f"resample at T={t.explore.temperature:g}"
    )
    return f"{t.explore.when} → {what}"


def _measured_caption(m: dict, unit: float) -> str:
    acc = "" if m.get("accuracy") is None else f", accuracy {m['accuracy']:.4f}"
    if m.get("cost_ratio") is not None:  # the one cost ratio, as simulate and calibrate print it
        return (
            f"measured on {m['problems']} bank problems: {m['samples_per_problem']:.2f} samples, cost "
            f"{m['cost_per_problem']:.3g} per problem, cost_ratio {m['cost_ratio']:.4f} (total cost / "
            f"total cost of {m['reference']} on the same problems; per tier in the cost_ratio column){acc}"
        )
    return (
        f"measured on {m['problems']} bank problems: {m['samples_per_problem']:.2f} samples, cost "
        f"{m['cost_per_problem']:.3g} ({m['cost_per_problem'] / unit:.2f}) per problem{acc}"
    )


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def strategy_table(
    s: PlanStrategy, escalation_rate: float, token_share: float, measured: dict | None = None
) -> Table:
    """One strategy's tiers; ``measured`` (``sim.estimate.bank_estimate``'s figures for it)
    replaces the assumed escalation rates with ones simulated on a bank."""
    worst, exp = worst_case(s), expected(s, escalation_rate, token_share)
    unit = max(t.cost_per_token * t.max_tokens for t in s.tiers)
    title = f"{s.key}  [{s.kind}]" + (f"\nmarker: {s.marker}" if s.marker and s.marker != s.key else "")
    caption = (
        f"worst case {worst.samples:g} samples, cost {worst.cost:.3g} ({worst.relative:.2f} top-model answers); "
        + (
            _measured_caption(measured, unit)
            if measured
            else f"expected {exp.samples:.2f} samples, cost {exp.cost:.3g} ({exp.relative:.2f}) assuming "
            f"{escalation_rate:.0%} escalate per tier and {token_share:.0%} of max_tokens per sample"
        )
    )
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for name in (
        "#",
        "model",
        "k",
        "T",
        "top_p",
        "max_tok",
        "seed",
        "escalate if",
        "retry",
        "explore",
        "reached",
        *(
            ("escalated", "samples", "cost_ratio" if measured.get("cost_ratio") is not None else "cost")
            if measured
            else ()
        ),
        "worst cost",
    ):
        table.add_column(
            name,
            justify="right" if name in ("#", "k", "T", "top_p", "max_tok", "seed") else "left",
            overflow="fold",  # an 80-column terminal wraps ids: 0.034M and 0.084M never print alike
        )
    for i, t in enumerate(s.tiers):
        ks = first_tier_ks(s) if i == 0 else [t.k]
        skip_at = (
            s.adaptive_k.escalation_k_threshold if i == 0 and s.adaptive_k and len(s.tiers) > 1 else None
        )
        runs = [k for k in ks if skip_at is None or k < skip_at] or [0]
        k_text = str(t.k) if len(ks) == 1 else f"{min(runs)}-{max(runs)}" if len(runs) > 1 else str(runs[0])
        if len(runs) < len(ks):
            k_text += f" (>={skip_at}: skipped)"
        cost = worst_case_samples(t, max(runs)) * t.max_tokens * t.cost_per_token / unit if max(runs) else 0.0
        table.add_row(
            str(i),  # tiers count from 0, as in specs, results and reports
            t.alias or t.model,
            k_text,
            f"{t.temperature:g}",
            f"{t.top_p:g}",
            str(t.max_tokens),
            str(t.seed),
            t.escalate_if or "—",
            _retry(t),
            _explore(t),
            f"{escalation_rate**i:.0%}" if not measured else f"{measured['tiers'][i]['reached']:.1%}",
            *(_measured_cells(measured["tiers"][i], unit) if measured else ()),
            f"{cost:.2f}",
        )
    return table


def _measured_cells(row: dict, unit: float) -> tuple[str, str, str]:
    if "cost_ratio" in row:  # this tier's share of the cost ratio (the tiers' shares add up to it)
        return (
            _cell(row["escalated"], ".1%"),
            _cell(row["samples_per_problem"], ".2f"),
            _cell(row["cost_ratio"], ".4f"),
        )
    cost = None if row["cost_per_problem"] is None else row["cost_per_problem"] / unit
    return _cell(row["escalated"], ".1%"), _cell(row["samples_per_problem"], ".2f"), _cell(cost, ".3f")


def policy_lines(s: PlanStrategy) -> list[str]:
    lines = [f"prompt {s.prompt}; answer format {s.answer}; final answer: {s.final_answer.replace('_', ' ')}"]
    a = s.adaptive_k
    if a is not None:
        rule = {
            AdaptiveKPolicy.DIFFICULTY_BUCKETS: f"buckets {list(a.buckets)} on column {a.column!r}"
            if a.buckets
            else f"k {s.tiers[0].k}",
            AdaptiveKPolicy.BUDGET: f"{a.total_budget} first-tier samples shared by difficulty ({a.column!r}), k in "
            f"[{a.min_k}, {a.max_k}]",
            AdaptiveKPolicy.FIXED: "fixed",
        }[a.policy]
        skip = f"; skip tier 0 when k >= {a.escalation_k_threshold}" if a.escalation_k_threshold else ""
        if a.start_tiers:
            starts = ", ".join(f"<= {b:g}: tier {t}" for b, t in a.start_tiers)
            skip += f"; start tier by {a.column!r} ({starts}; above: tier {a.start_tiers[-1][1]})"
        lines.append(f"adaptive k: {rule}{skip}")
    if s.early_stop is not None:
        lines.append(
            f"early stop: sample in rounds of {s.early_stop.round_size}, {stop_rule_text(s.early_stop)}"
        )
    if s.vote is not None:
        v = s.vote
        t = v.softmax_temperature()
        weigh = (
            f"exp({v.metric.value} / {t:g}), softmax" if t is not None else f"its {v.metric.value} confidence"
        )
        how = {
            "majority": "one sample, one vote",
            "weighted": f"each sample weighs {weigh}",
            "filtered": f"keep the {v.keep:.0%} most confident samples ({v.metric.value}), then weigh {weigh}",
            "best": f"the answer of the sample with the highest {v.metric.value} (best-of-n)",
        }[v.policy.value]
        lines.append(f"vote: {v.policy.value} ({how}); confidence groups of {v.window} tokens, tail {v.tail}")
    if s.online is not None:
        window = s.vote.window if s.vote is not None else DEFAULT_GROUP_WINDOW
        lines.append(
            f"online: the first {s.online.warmup} traces of a tier set the stop threshold (keep "
            f"{s.online.keep:.0%}); a later trace is aborted once its last {window} tokens' "
            "confidence falls below it"
        )
    if s.budget is not None:
        parts = [f"{v:g} {n.replace('_', ' ')}" for n, v in s.budget.model_dump().items() if v is not None]
        lines.append(f"budget: {', '.join(parts)}")
    return lines


def render_plan(
    plan: Plan,
    *,
    escalation_rate: float = 0.3,
    token_share: float = 0.25,
    console: Console | None = None,
    measured: dict[str, dict] | None = None,
) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    console.print(f"plan {plan.hash[:19]}  schema {plan.schema_version}  source {plan.source or '-'}")
    for s in plan.strategies:
        console.print(strategy_table(s, escalation_rate, token_share, (measured or {}).get(s.key)))
        for line in policy_lines(s):
            console.print(f"  {line}")
    models = Table(title="models", title_justify="left")
    for name in ("id", "path", "params", "greedy-only", "tp", "max len", "dtype"):
        models.add_column(name, overflow="fold")
    for m in plan.models.values():
        models.add_row(
            m.id,
            m.path,
            f"{m.params:.3g}",
            "yes" if m.greedy_only else "",
            str(m.tensor_parallel_size),
            str(m.max_model_len or ""),
            m.dtype,
        )
    console.print(models)


def stop_rule_text(es: EarlyStop) -> str:
    """What an early-stopping rule does, in words."""
    return {
        "decided": "stop once the remaining samples cannot change the winner",
        "adaptive": f"stop once P(leader stays leader) >= {es.confidence:g} (Beta/Dirichlet posterior)",
        "esc": f"stop once the last {es.window} samples agree",
        "weighted": f"stop once the confidence-weighted P(leader stays leader) >= {es.confidence:g}",
    }[es.rule.value]
