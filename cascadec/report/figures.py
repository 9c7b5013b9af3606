"""The report's PNG plots (matplotlib, Agg backend, imported only when a report is drawn).

Files carry no timestamp or version metadata, so the same inputs draw the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from cascadec.errors import CascadecError
from cascadec.limits import atomic_write
from cascadec.report.analysis import Point, Reliability, Scale, pareto_frontier

ACCURACY_COST = "accuracy_cost.png"
TIER_FLOW = "tier_flow.png"
RELIABILITY = "reliability.png"

_STYLE = {  # group → (marker, color)
    "strategy": ("o", "tab:blue"),
    "greedy": ("s", "tab:gray"),
    "vote": ("^", "tab:olive"),
    "oracle": ("*", "tab:red"),
}


LABEL_CHARS = 60  # a name on a plot: longer ones are cut (the report's tables give them whole)


def label(text: str) -> str:
    """A name as plain text on a plot: ``$`` escaped (matplotlib reads ``$...$`` as math and fails
    on an odd one), cut to LABEL_CHARS."""
    text = str(text)
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise CascadecError("cascadec report draws with matplotlib: pip install 'cascadec[report]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


Write = Callable[[str, Callable[[Path], None]], object]  # an owned folder's recorded write


def _save(fig, path: Path, write: Write | None = None) -> None:
    """Atomically: never half a PNG; a symlink at ``path`` is replaced, not followed. With
    ``write`` (``OwnedDir.write``), recorded in the report folder's ownership record."""

    def draw(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")

    if write is not None:
        write(path.name, draw)
    else:
        atomic_write(path, draw)


def accuracy_cost(points: list[Point], xlabel: str, path: Path, write: Write | None = None) -> list[Point]:
    """Scatter of every point, the Pareto frontier as a step line; returns the frontier."""
    plt = _pyplot()
    frontier = pareto_frontier(points)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for group, (marker, color) in _STYLE.items():
        pts = [p for p in points if p.group == group and not math.isnan(p.accuracy)]
        if pts:
            ax.scatter(
                [p.cost for p in pts],
                [100 * p.accuracy for p in pts],
                marker=marker,
                color=color,
                s=110 if group == "oracle" else 45,
                label=group,
                zorder=3,
            )
    for p in points:
        if p.group in ("strategy", "oracle", "greedy") and not math.isnan(p.accuracy):
            ax.annotate(
                label(p.name),
                (p.cost, 100 * p.accuracy),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
    if frontier:
        ax.step(
            [p.cost for p in frontier],
            [100 * p.accuracy for p in frontier],
            where="post",
            color="black",
            linewidth=1,
            alpha=0.6,
            label="Pareto frontier",
        )
    if (
        points
        and min(p.cost for p in points) > 0
        and max(p.cost for p in points) / min(p.cost for p in points) > 30
    ):
        ax.set_xscale("log")
    ax.set_xlabel(xlabel.replace("$", r"\$"))
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy against cost")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path, write)
    plt.close(fig)
    return frontier


def tier_flow(flows: list[tuple[str, list[int], list[int]]], path: Path, write: Write | None = None) -> None:
    """Per strategy and tier: problems answered there and problems passed on (stacked bars)."""
    plt = _pyplot()
    labels, answered, escalated = [], [], []
    for name, reached, ans in flows:
        for t, (n, a) in enumerate(zip(reached, ans, strict=True)):
            labels.append(f"{label(name)} · tier {t}")
            answered.append(a)
            escalated.append(max(n - a, 0))
    fig, ax = plt.subplots(figsize=(8, max(2.0, 0.32 * len(labels) + 1.2)))
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, answered, color="tab:green", label="answered at this tier")
    ax.barh(ys, escalated, left=answered, color="tab:orange", label="passed on")
    ax.set_yticks(ys, labels, fontsize=7)
    ax.set_xlabel("problems")
    ax.set_title("How problems flow through the tiers")
    ax.legend(fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    _save(fig, path, write)
    plt.close(fig)


def reliability(curves: list[Reliability], path: Path, write: Write | None = None) -> None:
    """One panel per signal: binned confidence against accuracy, one line per source."""
    plt = _pyplot()
    signals = list(dict.fromkeys(c.signal for c in curves))
    cols = min(3, max(1, len(signals)))
    rows = math.ceil(len(signals) / cols) if signals else 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(signals) :]:
        ax.axis("off")
    for ax, signal in zip(axes.flat, signals, strict=False):
        group = [c for c in curves if c.signal == signal]
        probability = group[0].scale in (Scale.PROBABILITY, Scale.EXP)
        if probability:
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=0.8)
            ax.set_xlim(0, 1)
        for c in group:
            text = label(c.source) if c.ece is None else f"{label(c.source)} (ECE {c.ece:.3f})"
            ax.plot(c.centers, c.accuracy, marker="o", markersize=3, linewidth=1, label=text)
        ax.set_ylim(-0.02, 1.02)
        xlabel = {Scale.EXP: "exp(mean_logprob)", Scale.LOWER: f"{signal} (lower = surer)"}.get(
            group[0].scale, signal
        )
        ax.set_xlabel(xlabel + ("" if probability else ", quantile bins"), fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.set_title(signal, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    if not signals:
        axes[0, 0].text(0.5, 0.5, "no confidence signals in the inputs", ha="center", va="center")
        axes[0, 0].axis("off")
    fig.tight_layout()
    _save(fig, path, write)
    plt.close(fig)
