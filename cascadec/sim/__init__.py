"""Evidence from recorded samples: banks, exact and vectorised simulation, calibration, search.

A sample bank records every model's samples on a problem set once; every plan then replays
over it without a model: :mod:`.exact` drives the runtime's own job state machine per problem,
:mod:`.vector` evaluates thousands of configurations × problems at once with numpy — plain
threshold cascades through :mod:`.sweep`, the rest through :mod:`.machine` (both proven equal
to the exact path by property tests), :mod:`.calibrate` certifies a choice on
held-out problems, :mod:`.search` declares what may vary.
"""
