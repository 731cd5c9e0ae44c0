"""medsbench.metrics: official-compatible (reference) and honest (strict) scoring of predictions.

Library entry points: :func:`score_predictions` (a :class:`medsbench.records.results.Results`
record), :func:`write_results`, :func:`bootstrap_ci`, :func:`paired_test`,
:func:`compare_predictions`; the scorer registry: :func:`scorer_for` (a catalog entry's
:class:`Scorer`), :func:`primary_metric` (the one metric a leaderboard ranks a task, category or
pooled group by), :func:`register_scorer`. Predictions are read only with
:func:`medsbench.records.read_predictions`.
"""

from medsbench.metrics.compare import compare_predictions
from medsbench.metrics.registry import (
    Scorer,
    get_scorer,
    headline_metrics,
    primary_metric,
    register_scorer,
    scorer_for,
    scorers,
)
from medsbench.metrics.score import score_items, score_predictions, write_results
from medsbench.metrics.stats import bootstrap_ci, paired_test

__all__ = [
    "Scorer",
    "bootstrap_ci",
    "compare_predictions",
    "get_scorer",
    "headline_metrics",
    "paired_test",
    "primary_metric",
    "register_scorer",
    "score_items",
    "score_predictions",
    "scorer_for",
    "scorers",
    "write_results",
]
