"""``cascadec report``: evidence from runs and simulations as Markdown with PNG plots.

Inputs are run directories (``cascadec run``) and ``cascadec simulate --json`` outputs; with
a sample bank, every strategy is set against the baselines and the oracle router of
:mod:`cascadec.sim.baselines`. :mod:`.inputs` reads, :mod:`.analysis` measures (Pareto
frontier, tier flow, reliability, paired tests), :mod:`.figures` draws, :mod:`.build` writes.
"""
