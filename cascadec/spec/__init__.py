"""Strategy specs: the condition language, the typed spec model, the YAML loader, marker → spec.

Import the submodules directly (``cascadec.spec.condition`` is what the runtime needs); this
package imports nothing so that importing one of them stays cheap.
"""
