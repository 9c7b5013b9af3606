"""The semantic core: each fact of the strategy language and its runtime, stated once.

A leaf package: it imports nothing from cascadec but :mod:`cascadec.errors`,
:mod:`cascadec.resources` (the grammar files) and :mod:`cascadec.registry`. The front-ends
(marker, YAML spec), the compiler, the plan, the runtime and the simulator import these facts
instead of re-encoding them:

- :mod:`~cascadec.core.kinds` — the strategy kinds (one ``StrEnum``);
- :mod:`~cascadec.core.printer` — the canonical marker printer (and number formats);
- :mod:`~cascadec.core.signals` — the signal registry: name, range, how it moves with k;
- :mod:`~cascadec.core.conditions` — the condition AST, parser and evaluator;
- :mod:`~cascadec.core.reachability` — what a condition can do at a tier of k samples;
- :mod:`~cascadec.core.seeds` — the one seed rule;
- :mod:`~cascadec.core.selection` — cost-aware tier selection, worst-case sample counts;
- :mod:`~cascadec.core.tier_rules` — the checks over a strategy's tiers (unknown model, greedy k,
  greedy-only, single-tier cascade, cost growth) that the marker front-end and the compiler share.

Registry resolution (``--models zoo``, a YAML path, a registry object) is
:func:`cascadec.registry.resolve_registry`, one layer below.
"""
