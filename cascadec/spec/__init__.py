"""Strategy specs, a front-end: the typed spec model, the YAML loader, marker → spec.

The condition language and the signal registry live in :mod:`cascadec.core`. Import the
submodules directly; this package imports nothing so that importing one of them stays cheap.
"""
