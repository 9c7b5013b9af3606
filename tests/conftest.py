"""Suite-wide settings.

Hypothesis: no per-example deadline. The properties check what is computed, never how fast
(speed is for benchmarks/); a deadline only makes a test fail when CI shares its cores.
"""

from hypothesis import settings

settings.register_profile("cascadec", deadline=None)
settings.load_profile("cascadec")
