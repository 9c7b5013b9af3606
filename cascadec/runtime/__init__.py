"""The runtime: execute a resolved plan over a problem table, one model at a time.

The pandas API (``cascadec.run``, ``cascadec.load_results``) lives one layer up, in
``cascadec.api``: it compiles specs and markers, which the runtime never does. Importing this
package costs nothing and never pulls in an inference engine.
"""
