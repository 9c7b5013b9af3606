"""Laws of the report's measurements, on generated tables.

- the oracle router is right wherever any route is, and where a route is right it costs no
  more than that route (so it is ≥ every route's accuracy, at ≤ its cost on what it gets right);
- the Pareto frontier is exactly the set of points nothing dominates;
- McNemar and the paired bootstrap are symmetric in (a, b) and seeded.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cascadec.report.analysis import Point, paired, pareto_frontier
from cascadec.sim.baselines import oracle_router

SETTINGS = settings(max_examples=100, deadline=None)


@st.composite
def tables(draw):
    r = draw(st.integers(1, 5))
    p = draw(st.integers(1, 30))
    correct = draw(arrays(np.float64, (r, p), elements=st.sampled_from([0.0, 1.0])))
    cost = draw(arrays(np.float64, (r, p), elements=st.floats(0, 100, allow_nan=False)))
    return correct, cost


@SETTINGS
@given(tables())
def test_oracle_router_dominates_every_route(table):
    correct, cost = table
    o = oracle_router(correct, cost)
    assert np.array_equal(o.correct, (correct == 1).any(axis=0).astype(float))
    for r in range(correct.shape[0]):
        right = correct[r] == 1
        assert o.correct.mean() >= correct[r].mean()
        assert np.all(o.cost[right] <= cost[r][right])
    assert np.all(o.cost >= cost.min(axis=0))


@SETTINGS
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 1)), min_size=1, max_size=20))
def test_frontier_is_the_undominated_set(pairs):
    pts = [Point(str(i), c, a, "s") for i, (c, a) in enumerate(pairs)]
    front = pareto_frontier(pts)
    for p in front:  # nothing beats a frontier point on both axes
        assert not any(
            q.cost <= p.cost and q.accuracy >= p.accuracy and (q.cost, q.accuracy) != (p.cost, p.accuracy)
            for q in pts
        )
    for q in pts:  # every point is matched or beaten by the frontier
        assert any(p.cost <= q.cost and p.accuracy >= q.accuracy for p in front)


@SETTINGS
@given(arrays(np.float64, st.integers(1, 40), elements=st.sampled_from([0.0, 1.0])), st.randoms())
def test_paired_tests_are_symmetric_and_seeded(a, rnd):
    b = np.array([rnd.choice([0.0, 1.0]) for _ in a])
    ids = [str(i) for i in range(len(a))]
    ab = paired("a", ids, a, "b", ids, b)
    ba = paired("b", ids, b, "a", ids, a)
    assert ab["p_value"] == ba["p_value"] and (ab["only_a"], ab["only_b"]) == (ba["only_b"], ba["only_a"])
    assert ab["diff"] == -ba["diff"]
    assert ab == paired("a", ids, a, "b", ids, b)
    lo, hi = ab["ci95"]
    assert lo - 1e-12 <= ab["diff"] <= hi + 1e-12 or lo == hi
