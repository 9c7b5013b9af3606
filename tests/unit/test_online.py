"""DeepConf-online: the warm-up threshold and aborting a trace while it streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadec.runtime.confidence import lowest_group
from cascadec.runtime.online import TraceMonitor, replay_trace, warmup_threshold


def test_threshold_is_a_low_percentile_of_warmup_lowest_groups():
    warm = [[5, 5, 5, 5], [1, 1, 4, 4], [3, 3, 3, 3], [2, 2, 2, 2]]
    # lowest groups (window 2): 5, 1, 3, 2 -> keep 100%: the minimum; keep 50%: the median
    assert warmup_threshold(warm, 2, keep=100) == 1.0
    assert warmup_threshold(warm, 2, keep=50) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="no warm-up"):
        warmup_threshold([[]], 2)


def test_monitor_aborts_once_the_running_window_drops():
    m = TraceMonitor(threshold=2.0, window=2)
    assert [m.push(c) for c in (1.0, 5.0, 5.0, 1.0, 2.0)] == [False, False, False, False, True]
    assert m.tokens == 5 and m.aborted and m.push(9.0)  # stays stopped
    assert replay_trace([1.0, 5.0, 5.0, 1.0, 2.0, 9.0, 9.0], 2.0, 2).tokens == 5


def test_non_finite_tokens_are_skipped():
    m = TraceMonitor(threshold=2.0, window=2)
    assert not any(m.push(c) for c in (3.0, float("-inf"), 3.0))


@given(st.lists(st.floats(0, 10), min_size=1, max_size=40), st.floats(0, 10), st.integers(1, 6))
def test_a_trace_is_aborted_iff_its_lowest_group_is_below_the_threshold(c, threshold, window):
    out = replay_trace(c, threshold, window)
    low = lowest_group(c, window) if len(c) >= window else None
    assert out.aborted == (low is not None and low < threshold - 1e-9) or (
        low is not None and abs(low - threshold) < 1e-6
    )
    assert out.tokens <= len(c)
