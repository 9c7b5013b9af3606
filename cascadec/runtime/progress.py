"""What a person watching a run sees: a progress bar per model stage, a summary at the end.

Bars count requests (one request = one problem's ask of n samples). A stage's total grows
while it runs, because early-stopping rounds and retries add requests for the same model.
Everything goes to stderr so stdout stays clean for scripts.
"""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cascadec.runtime.executor import Reporter


class RichReporter(Reporter):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.labels: dict[str, str] = {}
        self.started = False

    def stage(self, model: str, tiers: str) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if model not in self.tasks:
            self.labels[model] = f"tier {tiers} · {model}"
            self.tasks[model] = self.progress.add_task(self.labels[model], total=0)

    def loading(self, model: str, done: bool) -> None:
        """Say so while a model loads (tens of seconds, before the first request finishes)."""
        if model in self.tasks:
            label = self.labels[model] + ("" if done else " [dim](loading model…)[/dim]")
            self.progress.update(self.tasks[model], description=label)

    def add(self, model: str, requests: int) -> None:
        task = self.tasks[model]
        current = self.progress.tasks[self._pos(task)].total or 0
        self.progress.update(task, total=current + requests)

    def advance(self, model: str, requests: int) -> None:
        if model in self.tasks:
            self.progress.advance(self.tasks[model], requests)

    def _pos(self, task_id: int) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == task_id)

    def close(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False


def make_reporter(progress: bool | None) -> Reporter:
    """Rich bars when asked, or (``None``) when stderr is a terminal."""
    if progress is None:
        progress = sys.stderr.isatty()
    return RichReporter() if progress else Reporter()


def summary_tables(problems: pd.DataFrame, model_stats: dict[str, dict]) -> list[Table]:
    """Per-model work (loads, batches, tokens, seconds) and per-strategy outcome tables."""
    models = Table(title="models", title_justify="left")
    for col in ("model", "loads", "batches", "requests", "samples", "reused", "tokens", "seconds"):
        models.add_column(col, justify="left" if col == "model" else "right", overflow="fold")
    for model, s in model_stats.items():
        models.add_row(
            model,
            str(s["loads"]),
            str(s["batches"]),
            str(s["requests"]),
            str(s["samples"]),
            str(s["reused_samples"]),
            str(s["tokens"]),
            f"{s['seconds'] + s['load_seconds']:.1f}",
        )
    strategies = Table(title="strategies", title_justify="left")
    for col in ("strategy", "problems", "accuracy", "escalated", "mean tiers", "samples", "tokens", "cost"):
        strategies.add_column(col, justify="left" if col == "strategy" else "right", overflow="fold")
    for key, g in problems.groupby("strategy", sort=False):
        graded = g["correct"].dropna()
        acc = f"{graded.astype(bool).mean():.1%}" if len(graded) else "-"
        strategies.add_row(
            str(key),
            str(len(g)),
            acc,
            f"{(g['tiers_used'] > 1).mean():.1%}",
            f"{g['tiers_used'].mean():.2f}",
            str(int(g["samples"].sum())),
            str(int(g["tokens"].sum())),
            f"{g['cost'].sum():.4g}",
        )
    notes = []
    if "ungraded" in problems and problems["ungraded"].any():  # timeouts are shown, never hidden
        notes.append(
            f"{int(problems['ungraded'].sum())} problem(s) had answer pairs the grader could not "
            "decide in time (column 'ungraded'; counted as not equal)"
        )
    if "grading_over_budget" in problems and problems["grading_over_budget"].any():
        notes.append(
            f"{int(problems['grading_over_budget'].sum())} problem(s) used up their grading budget; "
            "their remaining pairs were left ungraded (column 'grading_over_budget')"
        )
    if notes:
        strategies.caption = "\n".join(notes)
    return [models, strategies]
