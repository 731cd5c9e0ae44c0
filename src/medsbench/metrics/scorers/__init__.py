"""The built-in scorers, one module per family of tasks; each module registers its scorers with
:func:`medsbench.metrics.registry.register_scorer` when imported.

The registry imports every module of this package (names not starting with ``_``) the first
time it is asked for a scorer, so adding a metric is one module here plus the catalog line that
names it (``scorer:`` in ``medsbench/tasks/catalog.yaml``).
"""
