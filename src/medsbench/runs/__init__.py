"""Evaluation runs: plan, cache, backend, predictions, manifest, resume, shards.

:func:`medsbench.runs.run.execute_run` generates and records predictions; it scores them only when
given a scorer (``RunOptions.scorer``), which :mod:`medsbench.pipeline` (the API to use) passes in.
"""
