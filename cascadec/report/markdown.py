"""The report's Markdown: tables of numbers beside the plots they explain."""

from __future__ import annotations

import math

from cascadec.report.analysis import Point, Reliability


def pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def num(x: float | None, fmt: str = ".4g") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(v: str) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return out + [""]


def inputs_section(entries, ratio, oracle_pp: float | None = None) -> list[str]:
    """Every strategy; with a bank, its cost ratio to the largest model and to the oracle router."""
    rows = []
    for e in entries:
        r = ratio(e.cost_per_problem)
        row = [
            e.name,
            str(e.origin),
            e.source,
            str(e.problems),
            pct(e.accuracy),
            num(e.cost_per_problem),
            num(r, ".3f") + ("×" if r is not None else ""),
        ]
        if oracle_pp:
            row.append(num(e.cost_per_problem / oracle_pp, ".2f") + "×")
        rows.append(row)
    header = ["strategy", "from", "source", "problems", "accuracy", "cost / problem", "cost ratio"]
    header += ["× oracle cost"] if oracle_pp else []
    return ["## Strategies", ""] + table(header, rows)


def baselines_section(rows: list[dict], reference: str, problems: int, bank: str) -> list[str]:
    out = [
        "## Baselines and the oracle",
        "",
        f"On the sample bank `{bank}`, {problems} problems. Cost ratios are to **{reference}** "
        "(the largest model, greedy) on the same problems. The oracle router sends each problem to "
        "the cheapest baseline that answers it right (the cheapest of all when none does).",
        "",
    ]
    body = [
        [
            r["name"],
            r["kind"],
            "—" if r["k"] is None else str(r["k"]),
            pct(r["accuracy"]),
            num(r["cost_ratio"], ".3f") + "×",
        ]
        for r in rows
    ]
    return out + table(["baseline", "kind", "k", "accuracy", "cost ratio"], body)


GROUPS = {
    "strategy": "strategy (an input)",
    "greedy": "single model, greedy",
    "vote": "single model, majority vote",
    "oracle": "oracle router",
}


def _ci(ci, scale: float = 1.0, fmt: str = ".4g") -> str:
    return "—" if ci is None else f"[{format(scale * ci[0], fmt)}, {format(scale * ci[1], fmt)}]"


def frontier_section(image: str, xlabel: str, frontier: list[Point], points=(), band=None) -> list[str]:
    out = [
        "## Accuracy against cost",
        "",
        f"![accuracy against cost]({image})",
        "",
        f"x: {xlabel}; y: accuracy (%). Markers by group ("
        + "; ".join(f"{g}: {t}" for g, t in GROUPS.items())
        + "); error bars are 95% intervals: accuracy exact (Clopper–Pearson), cost a paired "
        "bootstrap of the ratio (2,000 resamples, seed 0). When the strategies sit in a narrow band "
        "of the accuracy range a second panel zooms on them. The Pareto frontier runs over the "
        "reachable points only: the oracle router picks by the gold answer, so it is drawn apart."
        + (f" Shaded: the {band.text}." if band is not None else ""),
        "",
        "On the Pareto frontier:",
        "",
    ]
    out += table(
        ["point", "what it is", "cost", "cost 95% CI", "accuracy", "accuracy 95% CI (%)"],
        [
            [
                p.name,
                GROUPS.get(p.group, p.group),
                num(p.cost),
                _ci(p.cost_ci),
                pct(p.accuracy),
                _ci(p.accuracy_ci, 100, ".2f"),
            ]
            for p in frontier
        ],
    )
    oracle = [p for p in points if p.group == "oracle"]
    if oracle:
        o = oracle[0]
        out += [
            f"Not reachable (off the frontier): the oracle router, {pct(o.accuracy)} at {num(o.cost)}.",
            "",
        ]
    return out


def flow_section(image: str, flows) -> list[str]:
    out = [
        "## Tier flow",
        "",
        f"![tier flow]({image})",
        "",
        "Per strategy and tier: problems that started there (a routed start skips earlier tiers), "
        "reached it, were answered there or passed on; shares of the strategy's problems; accuracy "
        "of the answers given at that tier.",
        "",
    ]
    rows = []
    for f in flows:
        n = max(f.problems, 1)
        for t, reached in enumerate(f.reached):
            acc = f.accuracy(t)
            rows.append(
                [
                    f.name,
                    str(t),
                    str(f.started[t]),
                    str(reached),
                    f"{f.answered[t]} ({100 * f.answered[t] / n:.1f}%)",
                    f"{f.passed_on[t]} ({100 * f.passed_on[t] / n:.1f}%)",
                    pct(acc),
                ]
            )
    return out + table(
        ["strategy", "tier", "started here", "reached", "answered (share)", "passed on (share)", "accuracy"],
        rows,
    )


def reliability_section(image: str, curves: list[Reliability], note: str) -> list[str]:
    out = [
        "## Reliability of the confidence signals",
        "",
        f"![reliability diagrams]({image})",
        "",
        "Binned confidence against empirical accuracy of the vote it describes. Probability-valued "
        "signals (agreement, margin, weighted agreement, hybrid; exp(mean_logprob)) use 10 equal-width "
        "bins and report the expected calibration error (ECE: the count-weighted mean |accuracy − "
        "confidence|); unbounded signals (entropies, trace confidences) use quantile bins and have no ECE. "
        + note,
        "",
    ]
    rows = [[c.source, c.signal, str(c.scale), str(c.n), num(c.ece, ".4f")] for c in curves]
    return out + table(["source", "signal", "scale", "answers", "ECE"], rows)


def significance_section(pairs: list[dict], draws: int, seed: int) -> list[str]:
    out = [
        "## Paired significance",
        "",
        "Each pair on the problems both strategies answered (with a gold answer): exact McNemar test on "
        f"the discordant problems, and a paired-bootstrap 95% interval of the accuracy difference "
        f"(a − b; {draws} resamples, seed {seed}).",
        "",
    ]
    if not pairs:
        return out + ["No two inputs share problems with per-problem outcomes.", ""]
    rows = [
        [
            p["a"],
            p["b"],
            str(p["problems"]),
            pct(p["accuracy_a"]),
            pct(p["accuracy_b"]),
            f"{100 * p['diff']:+.2f} pt",
            f"[{100 * p['ci95'][0]:+.2f}, {100 * p['ci95'][1]:+.2f}]",
            f"{p['only_a']} / {p['only_b']}",
            f"{p['p_value']:.4g}",
        ]
        for p in pairs
    ]
    return out + table(
        [
            "a",
            "b",
            "problems",
            "acc a",
            "acc b",
            "a − b",
            "95% CI (pt)",
            "only a / only b right",
            "McNemar p",
        ],
        rows,
    )
