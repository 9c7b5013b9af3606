"""Batched lint (each distinct marker once, large sets in parallel) equals marker-by-marker analysis."""

from __future__ import annotations

import pytest

from cascadec import lint_batch
from cascadec.marker import analyze_marker
from cascadec.registry import load_registry

MARKERS = [
    "mv_1.5B_k4_t0.7",
    "mv_3B_k4_t0.7",
    "",
    "mv_cascade_7B_k4_t0.0_1.5B_k1_t0.0",
    "7B",
    "mv_1.5B_k0_t9",
]


def serial(cells, reg, source):
    return [
        (line, analyze_marker(text, reg, source=source, line=line, column_offset=offset)[1])
        for line, offset, text in cells
    ]


@pytest.mark.parametrize("parallel_from", [10**9, 1])
def test_batched_equals_serial(monkeypatch, parallel_from):
    monkeypatch.setattr(lint_batch, "PARALLEL_FROM", parallel_from)
    monkeypatch.setattr(lint_batch, "_CHUNK", 3)
    reg = load_registry(None)
    cells = [(i + 2, (i % 3) * 2, MARKERS[i % len(MARKERS)]) for i in range(40)]
    got = list(lint_batch.lint_markers(cells, reg, "t.csv"))
    assert got == serial(cells, reg, "t.csv")
    assert any(diags for _, diags in got)  # the table has findings, relocated to their own rows
    assert len({d.line for _, diags in got for d in diags}) > 5
