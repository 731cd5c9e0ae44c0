"""The primary metric of a task or category on the board: the one call site.

Every board place that needs "the" metric of a task (seeded rows, measured runs, pooled groups,
charts) asks :func:`primary_metric`. It delegates to the scoring package's mapping, so the board
and ``results.json`` always agree: ROUGE-L for text-similarity tasks (the paper's leaderboard
reports ROUGE), accuracy for closed answers, F1 for NER and text classification.
"""

from __future__ import annotations

from typing import Any


def primary_metric(entry: Any) -> str:
    """The primary metric key of a catalog entry (or a catalog category; both carry ``.metric``)."""
    from medsbench.metrics.families import PRIMARY

    family = entry.metric
    return PRIMARY.get(family, family)
