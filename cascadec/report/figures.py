"""The report's PNG plots (matplotlib, Agg backend, imported only when a report is drawn).

Made for a paper: every group its own marker and colour with a legend, 95% intervals as error
bars, names placed beside their points by a deterministic repel (leader lines where a name had
to move), long names wrapped, accuracy ticks in percentage points with the precision their
spacing needs, a zoomed panel where the strategies are when they sit in a narrow band of the
full range, the target band shaded. Files carry no timestamp or version metadata, so the same
inputs draw the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cascadec.errors import CascadecError
from cascadec.limits import atomic_write
from cascadec.report.analysis import REACHABLE, Flow, Point, Reliability, Scale, pareto_frontier

ACCURACY_COST = "accuracy_cost.png"
TIER_FLOW = "tier_flow.png"
RELIABILITY = "reliability.png"

_STYLE = {  # group → (marker, color, legend text); drawn in this order, strategies on top
    "vote": ("^", "tab:olive", "single model, majority vote"),
    "greedy": ("s", "dimgray", "single model, greedy"),
    "oracle": ("*", "tab:red", "oracle router (not reachable)"),
    "strategy": ("o", "tab:blue", "strategy"),
}
_LEGEND = ["strategy", "greedy", "vote", "oracle"]
ZOOM_SHARE = 0.4  # zoom when the strategies span less than this share of the full accuracy range
MIN_ZOOM_PT = 1.0  # a zoomed accuracy axis spans at least this many points


LABEL_CHARS = 60  # a name on a plot: longer ones are cut (the report's tables give them whole)
WRAP_CHARS = 26  # a name beside a point: wrapped at this width, two lines at most


def label(text: str) -> str:
    """A name as plain text on a plot: ``$`` escaped (matplotlib reads ``$...$`` as math and fails
    on an odd one), cut to LABEL_CHARS."""
    text = str(text)
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def wrap(text: str, width: int = WRAP_CHARS, lines: int = 2) -> str:
    """A name on at most ``lines`` lines of ``width`` characters, broken after ``_ - space /``
    (a marker's parts) or anywhere in a run longer than the width; the rest abbreviated with …"""
    text = str(text)
    pieces, cur = [], ""
    for ch in text:
        cur += ch
        if ch in "_- /,":
            pieces.append(cur)
            cur = ""
    if cur:
        pieces.append(cur)
    out, line = [], ""
    for piece in pieces:
        while len(piece) > width:  # a run longer than a line: split it
            room = width - len(line)
            line, piece = line + piece[:room], piece[room:]
            out.append(line)
            line = ""
        if len(line) + len(piece.rstrip()) > width and line:
            out.append(line.rstrip())
            line = ""
        line += piece
    if line:
        out.append(line.rstrip())
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1] + "…"
    return "\n".join(out).replace("$", r"\$")


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
        fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None}, bbox_inches="tight")

    if write is not None:
        write(path.name, draw)
    else:
        atomic_write(path, draw)


@dataclass(frozen=True)
class Band:
    """The target region: accuracy at least ``min_accuracy`` (a fraction) and, with a cost target,
    cost at most ``max_cost`` (in the x axis' unit). ``text`` names it in the legend."""

    min_accuracy: float | None
    max_cost: float | None
    text: str


# --- axes -------------------------------------------------------------------------------------


def _decimals(step: float) -> int:
    """Digits after the point that ticks ``step`` apart need (0.5 → 1, 0.25 → 2, 2 → 0)."""
    for d in range(0, 4):
        if abs(step * 10**d - round(step * 10**d)) < 1e-6:
            return d
    return 3


def _percent_axis(ax, lo: float, hi: float) -> None:
    """Accuracy in percentage points, ticks at 1/2/5 steps with the decimals the step needs."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_ylim(lo, hi)
    locator = MaxNLocator(nbins=6, steps=[1, 2, 5, 10])
    ticks = [t for t in locator.tick_values(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    d = _decimals(step)
    ax.yaxis.set_major_locator(locator)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.{d}f}"))


def _ratio_axis(ax, ratio: bool, log: bool, decades: float = 1.0) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if log:
        ax.set_xscale("log")
        subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)  # 0.05× 0.1× 0.2× side by side overprint
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10]))
    if ratio:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.4g}×"))


def _span(values: list[float], pad: float, minimum: float = 0.0) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    width = max(hi - lo, minimum)
    mid = (lo + hi) / 2
    lo, hi = mid - width / 2, mid + width / 2
    return lo - pad * width, hi + pad * width


def _min_width(xs: list[float]) -> float:
    """An axis over equal values still has a width (a fifth of their size, or 1 at 0)."""
    return 0.2 * max(abs(v) for v in xs) or 1.0


def _acc_range(p: Point) -> list[float]:
    if p.accuracy_ci is not None:
        return [100 * p.accuracy_ci[0], 100 * p.accuracy_ci[1]]
    return [100 * p.accuracy]


def _cost_range(p: Point) -> list[float]:
    return [p.cost_ci[0], p.cost_ci[1]] if p.cost_ci is not None else [p.cost]


# --- labels -----------------------------------------------------------------------------------

_OFFSETS = [  # candidate label offsets (points), nearest first; the first that collides with nothing wins
    (r * dx, r * dy)
    for r in (7, 16, 28, 42, 60, 80)
    for dx, dy in ((1, 0.6), (1, -0.9), (-1, 0.6), (-1, -0.9), (0, 1.2), (0, -1.5), (1.3, 0), (-1.3, 0))
]


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(fig, ax, items: list[tuple[float, float, str]], fontsize: float = 6.5) -> None:
    """Names beside their points, none over another or over a point, inside the axes: each
    tries the offsets of _OFFSETS in turn (in a fixed order: deterministic), keeping the first
    free one, else the least covered; a leader line joins a name that moved away from its point."""
    if not items:
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    anchors = [tuple(to_px((x, y))) for x, y, _ in items]
    taken = [(px - 4, py - 4, px + 4, py + 4) for px, py in anchors]  # the markers themselves
    order = sorted(range(len(items)), key=lambda i: (-anchors[i][1], anchors[i][0], items[i][2]))
    for i in order:
        x, y, text = items[i]
        px, py = anchors[i]
        probe = ax.text(0, 0, text, fontsize=fontsize, linespacing=1.0)
        box = probe.get_window_extent(renderer)
        probe.remove()
        w, h = box.width + 2, box.height + 2
        best, best_cost = None, math.inf
        for dx, dy in _OFFSETS:
            ox, oy = px + dx * scale, py + dy * scale
            left = ox if dx > 0 else (ox - w if dx < 0 else ox - w / 2)
            bottom = oy if dy > 0 else (oy - h if dy < 0 else oy - h / 2)
            rect = (left, bottom, left + w, bottom + h)
            outside = (
                max(0.0, frame.x0 - rect[0])
                + max(0.0, rect[2] - frame.x1)
                + max(0.0, frame.y0 - rect[1])
                + max(0.0, rect[3] - frame.y1)
            )
            cost = sum(_overlap(rect, t) for t in taken) + 1000.0 * outside
            cost += 1e-3 * (dx * dx + dy * dy)  # among equals, the nearest
            if cost < best_cost - 1e-9:
                best, best_cost = (rect, dx, dy), cost
            if cost < 1.0:  # free (the distance term only)
                break
        rect, dx, dy = best
        taken.append(rect)
        far = dx * dx + dy * dy > 10**2
        ha = "left" if dx > 0 else ("right" if dx < 0 else "center")
        va = "bottom" if dy > 0 else ("top" if dy < 0 else "center")
        ax.annotate(
            text,
            (x, y),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=fontsize,
            linespacing=1.0,
            ha=ha,
            va=va,
            zorder=5,
            arrowprops=(
                {"arrowstyle": "-", "color": "0.45", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 3}
                if far
                else None
            ),
            bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
        )


# --- accuracy against cost --------------------------------------------------------------------


def _draw_points(ax, points: list[Point]) -> None:
    for group, (marker, color, text) in _STYLE.items():
        pts = [p for p in points if p.group == group]
        if not pts:
            continue
        ax.scatter(
            [p.cost for p in pts],
            [100 * p.accuracy for p in pts],
            marker=marker,
            color=color,
            s={"oracle": 120, "strategy": 30}.get(group, 46),  # a strategy on a baseline: both seen
            edgecolors="white" if group != "oracle" else "none",
            linewidths=0.5,
            label=text,
            zorder=5 if group == "strategy" else 4,
        )
        for p in pts:
            if p.accuracy_ci is None and p.cost_ci is None:
                continue
            yerr = (
                None
                if p.accuracy_ci is None
                else [[100 * (p.accuracy - p.accuracy_ci[0])], [100 * (p.accuracy_ci[1] - p.accuracy)]]
            )
            xerr = None if p.cost_ci is None else [[p.cost - p.cost_ci[0]], [p.cost_ci[1] - p.cost]]
            ax.errorbar(
                [p.cost],
                [100 * p.accuracy],
                xerr=xerr,
                yerr=yerr,
                fmt="none",
                ecolor=color,
                elinewidth=0.7,
                capsize=1.5,
                alpha=0.55,
                zorder=3,
            )


def _draw_frontier(ax, frontier: list[Point], right: float) -> None:
    if not frontier:
        return
    xs = [p.cost for p in frontier] + [right]
    ys = [100 * p.accuracy for p in frontier] + [100 * frontier[-1].accuracy]
    ax.step(xs, ys, where="post", color="black", linewidth=0.9, alpha=0.55, zorder=2, label="Pareto frontier")


def _draw_band(ax, band: Band | None, xlim, ylim) -> None:
    if band is None:
        return
    lo = ylim[0] if band.min_accuracy is None else 100 * band.min_accuracy
    right = xlim[1] if band.max_cost is None else band.max_cost
    if lo >= ylim[1] or right <= xlim[0]:
        return
    ax.fill_between(
        [xlim[0], right],
        [lo, lo],
        [ylim[1], ylim[1]],
        color="tab:green",
        alpha=0.10,
        linewidth=0,
        zorder=0,
        label=band.text,
    )
    if band.min_accuracy is not None:
        ax.axhline(lo, color="tab:green", linewidth=0.8, linestyle="--", alpha=0.8, zorder=1)
    if band.max_cost is not None:
        ax.axvline(right, color="tab:green", linewidth=0.8, linestyle="--", alpha=0.8, zorder=1)


def _labelled(points: list[Point], frontier: list[Point], inside) -> list[tuple[float, float, str]]:
    """Which names to write: strategies, greedy models, the oracle, and votes on the frontier
    (every vote too when few)."""
    on_front = {id(p) for p in frontier}
    few = sum(1 for p in points if inside(p)) <= 16
    return [
        (p.cost, 100 * p.accuracy, wrap(p.name))
        for p in points
        if inside(p) and (p.group != "vote" or few or id(p) in on_front)
    ]


def accuracy_cost(
    points: list[Point],
    xlabel: str,
    path: Path,
    write: Write | None = None,
    *,
    ratio: bool = False,
    band: Band | None = None,
    reference: Point | None = None,
) -> list[Point]:
    """Accuracy against cost: each group its marker, 95% intervals as error bars, the Pareto
    frontier of the reachable points (the oracle apart, never on it), the target band, names
    beside their points; a second, zoomed panel on the strategies when they sit in a narrow
    band. Returns the frontier."""
    plt = _pyplot()
    pts = [p for p in points if not math.isnan(p.accuracy) and not math.isnan(p.cost)]
    frontier = pareto_frontier([p for p in pts if p.group in REACHABLE])
    if not pts:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, "no point has an accuracy (no gold answers)", ha="center", va="center")
        ax.axis("off")
        _save(fig, path, write)
        plt.close(fig)
        return frontier
    focus = [p for p in pts if p.group == "strategy"] + ([reference] if reference is not None else [])
    focus = focus or pts
    full_y = _span([v for p in pts for v in _acc_range(p)], 0.06, 2.0)
    focus_y = _span([v for p in focus for v in _acc_range(p)], 0.15, MIN_ZOOM_PT)
    zoom = len(pts) > len(focus) and (focus_y[1] - focus_y[0]) < ZOOM_SHARE * (full_y[1] - full_y[0])
    costs = [v for p in pts for v in _cost_range(p) if v > 0]
    log = bool(costs) and max(costs) / min(costs) > 30

    later: list[tuple[object, list]] = []
    if zoom:
        fig, (ax0, ax) = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [1, 1.55]})
    else:
        fig, ax = plt.subplots(figsize=(7.5, 5.2))
        ax0 = None

    def panel(a, view_pts, ylim, log_x, names) -> None:
        _draw_points(a, view_pts)
        xs = [v for p in view_pts for v in _cost_range(p)]
        if log_x:
            pos = [v for v in xs if v > 0]
            xlim = (min(pos) / 1.5, max(pos) * 1.5)
        else:
            xlim = _span(xs, 0.08, _min_width(xs))
            xlim = (max(xlim[0], 0.0) if min(xs) >= 0 else xlim[0], xlim[1])
        _ratio_axis(a, ratio, log_x, math.log10(xlim[1] / xlim[0]) if log_x else 0.0)
        a.set_xlim(*xlim)
        _percent_axis(a, ylim[0], min(ylim[1], 100.0 + 0.02 * (ylim[1] - ylim[0])))
        _draw_frontier(a, frontier, xlim[1])
        _draw_band(a, band, xlim, a.get_ylim())
        if reference is not None:
            a.axhline(100 * reference.accuracy, color="0.5", linewidth=0.6, linestyle=":", zorder=1)
        a.grid(True, alpha=0.25, linewidth=0.6)
        a.set_xlabel(xlabel.replace("$", r"\$"))
        a.set_ylabel("accuracy (%)")
        a.set_xlim(*xlim)
        later.append((a, names))  # placed once the layout is final (offsets are in points)

    if zoom:
        panel(
            ax0,
            pts,
            full_y,
            log,
            [(p.cost, 100 * p.accuracy, wrap(p.name)) for p in pts if p.group in ("greedy", "oracle")],
        )
        ax0.set_title("All points", fontsize=10)
        ylim = focus_y
        xs = [v for p in focus for v in _cost_range(p)]
        xlim = _span(xs, 0.15, _min_width(xs))
        inside = lambda p: xlim[0] <= p.cost <= xlim[1] and ylim[0] <= 100 * p.accuracy <= ylim[1]  # noqa: E731
        view = [p for p in pts if inside(p)]
        zlog = bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 30
        panel(ax, view, ylim, zlog, _labelled(view, frontier, inside))
        ax.set_title("Where the strategies are (zoomed)", fontsize=10)
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        ax0.add_patch(
            plt.Rectangle(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                fill=False,
                edgecolor="0.3",
                linestyle="--",
                linewidth=0.7,
                zorder=6,
            )
        )
    else:
        panel(ax, pts, full_y, log, _labelled(pts, frontier, lambda p: True))
        ax.set_title("Accuracy against cost", fontsize=10)
    handles, texts = ax.get_legend_handles_labels()
    if ax0 is not None:  # the overview's groups the zoom lacks
        for h, t in zip(*ax0.get_legend_handles_labels(), strict=True):
            if t not in texts:
                handles.append(h)
                texts.append(t)
    order = [_STYLE[g][2] for g in _LEGEND] + ["Pareto frontier"] + ([band.text] if band else [])
    pairs = sorted(
        zip(handles, texts, strict=True), key=lambda ht: order.index(ht[1]) if ht[1] in order else 99
    )
    fig.legend(
        [h for h, _ in pairs],
        [t for _, t in pairs],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(3, len(pairs)),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    for a, names in later:
        _place_labels(fig, a, names)
    _save(fig, path, write)
    plt.close(fig)
    return frontier


# --- tier flow --------------------------------------------------------------------------------


def tier_flow(flows: list[Flow], path: Path, write: Write | None = None) -> None:
    """Per strategy and tier, as shares of its problems: the problems that started at this tier
    (a thin bar over the rest that reached it from the tier before), and those it answered or
    passed on; beside each bar the counts, shares and the accuracy of the answers given there."""
    plt = _pyplot()
    rows: list[tuple[str, Flow | None, int]] = []  # (text, flow, tier); flow None: a heading
    for f in flows:
        rows.append((wrap(f.name, 60, 1), None, -1))
        rows += [(f"tier {t}", f, t) for t in range(len(f.reached))]
    fig, ax = plt.subplots(figsize=(7.0, max(2.2, 0.36 * len(rows) + 1.0)))
    ys = list(range(len(rows)))[::-1]
    colors = {"answered": "tab:green", "passed": "tab:orange", "started": "tab:blue", "arrived": "0.8"}
    for y, (text, f, t) in zip(ys, rows, strict=True):
        if f is None:
            ax.text(0, y - 0.1, text, ha="left", va="center", fontsize=8, fontweight="bold")
            continue
        n = max(f.problems, 1)
        share = lambda k, n=n: 100 * k / n  # noqa: E731
        answered, passed, started = f.answered[t], f.passed_on[t], f.started[t]
        arrived = max(f.reached[t] - started, 0)
        ax.barh(y - 0.08, share(answered), height=0.5, color=colors["answered"])
        ax.barh(y - 0.08, share(passed), left=share(answered), height=0.5, color=colors["passed"])
        ax.barh(y + 0.27, share(started), height=0.14, color=colors["started"])
        ax.barh(y + 0.27, share(arrived), left=share(started), height=0.14, color=colors["arrived"])
        acc = f.accuracy(t)
        parts = []
        if started and (t > 0 or started < f.problems):
            parts.append(f"started {started} ({share(started):.1f}%)")
        parts.append(
            f"answered {answered} ({share(answered):.1f}%)"
            + ("" if acc is None else f", {100 * acc:.1f}% right")
        )
        if passed or t < len(f.reached) - 1:
            parts.append(f"passed on {passed} ({share(passed):.1f}%)")
        ax.text(share(f.reached[t]) + 1.5, y - 0.08, " · ".join(parts), va="center", fontsize=7)
    ax.set_yticks(ys, [text if f is not None else "" for text, f, _ in rows], fontsize=7.5)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(0, 100)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.set_xlabel("share of the strategy's problems (%)")
    ax.set_ylim(-0.7, len(rows) - 0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_bounds(0, 100)
    ax.grid(True, axis="x", alpha=0.25)
    from matplotlib.patches import Patch

    ax.legend(
        [Patch(color=colors[k]) for k in ("started", "arrived", "answered", "passed")],
        [
            "started at this tier",
            "reached it from the tier before",
            "answered at this tier",
            "passed on to the next tier",
        ],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=4,
        fontsize=7,
        frameon=False,
        handlelength=1.2,
    )
    ax.set_title("How problems flow through the tiers", fontsize=10, pad=22, loc="left")
    _save(fig, path, write)
    plt.close(fig)


# --- reliability ------------------------------------------------------------------------------


def distinct_signals(curves: list[Reliability]) -> list[tuple[str, list[str]]]:
    """Each signal with the later signals whose curves repeat its own for every source (e.g.
    weighted_agreement and hybrid equal agreement under a plain majority vote): one panel each."""
    keys: dict[str, tuple] = {}
    for signal in dict.fromkeys(c.signal for c in curves):
        keys[signal] = tuple(
            (c.source, c.centers.round(12).tobytes(), c.accuracy.round(12).tobytes(), c.counts.tobytes())
            for c in curves
            if c.signal == signal
        )
    out: list[tuple[str, list[str]]] = []
    for signal, key in keys.items():
        same = next((o for o in out if keys[o[0]] == key), None)
        if same is None:
            out.append((signal, []))
        else:
            same[1].append(signal)
    return out


def reliability(curves: list[Reliability], path: Path, write: Write | None = None) -> None:
    """One panel per distinct signal: binned confidence against accuracy, one line per source,
    marker area by the bin's count; a signal that repeats another is named in its title."""
    plt = _pyplot()
    panels = distinct_signals(curves)
    cols = min(3, max(1, len(panels)))
    rows = math.ceil(len(panels) / cols) if panels else 1
    size = (4.0 * cols, 3.7 * rows) if panels else (5.0, 1.2)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    sources = list(dict.fromkeys(c.source for c in curves))
    cmap = plt.get_cmap("tab10")
    markers = "osD^v<>ph*"
    for ax, (signal, same) in zip(axes.flat, panels, strict=False):
        group = [c for c in curves if c.signal == signal]
        probability = group[0].scale in (Scale.PROBABILITY, Scale.EXP)
        if probability:
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=0.8)
            ax.set_xlim(-0.02, 1.02)
        for c in group:
            i = sources.index(c.source)
            text = wrap(c.source, 34, 1) + ("" if c.ece is None else f" (ECE {c.ece:.3f})")
            size = 6 + 40 * np.sqrt(np.asarray(c.counts, dtype=float) / max(float(np.max(c.counts)), 1.0))
            ax.plot(
                c.centers,
                c.accuracy,
                linewidth=1,
                color=cmap(i % 10),
                marker=markers[i % len(markers)],
                markersize=3,
                label=text,
            )
            ax.scatter(
                c.centers, c.accuracy, s=size, marker=markers[i % len(markers)], color=cmap(i % 10), zorder=3
            )
        ax.set_ylim(-0.03, 1.03)
        xlabel = {Scale.EXP: "exp(mean_logprob)", Scale.LOWER: f"{signal} (lower = surer)"}.get(
            group[0].scale, signal
        )
        ax.set_xlabel(xlabel + ("" if probability else ", quantile bins"), fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        title = signal if not same else f"{signal} (= {', '.join(same)})"
        ax.set_title(wrap(title, 48, 2), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no confidence signals in the inputs", ha="center", va="center")
        axes[0, 0].axis("off")
    fig.tight_layout()
    _save(fig, path, write)
    plt.close(fig)
