"""The semantic core: each fact of the strategy language and its runtime, stated once.

A leaf package (it imports nothing else from cascadec but :mod:`cascadec.errors`): the
front-ends (marker, YAML spec), the compiler, the plan, the runtime and the simulator all
import these facts instead of re-encoding them.
"""
