"""Lint many markers fast: each distinct marker is analysed once, large sets on every core.

A results table repeats a few dozen strategies over thousands of rows, so analysing each
distinct (text, column offset) once and relocating its diagnostics to every row that holds it
is exact (a marker's findings depend only on its text and where it starts). Tens of thousands
of *distinct* markers are split across worker processes: parsing is pure CPU, the workers
only need the registry, and results come back in order, so the output is identical to a
serial run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace

from cascadec.errors import Diagnostic
from cascadec.marker import analyze_marker
from cascadec.registry import ModelRegistry

PARALLEL_FROM = 20_000  # distinct markers; below this a pool costs more than it saves
_CHUNK = 2_000

_worker_registry: ModelRegistry | None = None


def _init(registry: ModelRegistry) -> None:
    global _worker_registry
    _worker_registry = registry


def _analyse_chunk(chunk: list[tuple[str, int]]) -> list[list[Diagnostic]]:
    assert _worker_registry is not None
    return [analyze_marker(text, _worker_registry, column_offset=offset)[1] for text, offset in chunk]


def _analyse(distinct: list[tuple[str, int]], registry: ModelRegistry) -> list[list[Diagnostic]]:
    workers = min(os.cpu_count() or 1, 8)
    if len(distinct) < PARALLEL_FROM or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [analyze_marker(text, registry, column_offset=offset)[1] for text, offset in distinct]
    chunks = [distinct[i : i + _CHUNK] for i in range(0, len(distinct), _CHUNK)]
    # fork: lint never imports torch or vLLM, so the children are plain copies of this process
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init, initargs=(registry,)) as pool:
        return [diags for part in pool.map(_analyse_chunk, chunks) for diags in part]


def lint_markers(
    cells: Iterable[tuple[int, int, str]], registry: ModelRegistry, source: str
) -> Iterator[tuple[int, list[Diagnostic]]]:
    """(line, diagnostics) for every (line, column offset, marker text) cell, in input order."""
    cells = list(cells)
    index: dict[tuple[str, int], int] = {}
    for _, offset, text in cells:
        index.setdefault((text, offset), len(index))
    found = _analyse(list(index), registry)
    for line, offset, text in cells:
        diagnostics = found[index[(text, offset)]]
        yield line, [replace(d, line=line, source=source) for d in diagnostics]
