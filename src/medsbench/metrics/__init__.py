"""medsbench.metrics: official-compatible (reference) and honest (strict) scoring of predictions.

Library entry points: :func:`score_predictions` (a :class:`medsbench.records.results.Results`
record), :func:`write_results`, :func:`bootstrap_ci`, :func:`paired_test`,
:func:`compare_predictions`, :func:`item_verdicts` (correct / incorrect per item); the scorer
registry: :func:`scorer_for_task` (the :class:`Scorer` of a task or category: whether it is free
text, its labels, gold-label rule, display names), :func:`primary_metric` (the one metric a
leaderboard ranks a task, category or pooled group by), :func:`register_scorer`. Predictions are
read only with :func:`medsbench.records.read_predictions`.
"""

from medsbench.metrics.compare import compare_predictions
from medsbench.metrics.registry import (
    METRIC_TITLES,
    Scorer,
    get_scorer,
    headline_metrics,
    metric_short,
    metric_title,
    primary_metric,
    register_scorer,
    scorer_for_task,
    all_scorers,
)
from medsbench.metrics.score import score_items, score_predictions, task_file_golds, write_results
from medsbench.metrics.stats import bootstrap_ci, paired_test
from medsbench.metrics.verdict import item_verdicts

__all__ = [
    "METRIC_TITLES",
    "Scorer",
    "bootstrap_ci",
    "compare_predictions",
    "get_scorer",
    "headline_metrics",
    "item_verdicts",
    "metric_short",
    "metric_title",
    "paired_test",
    "primary_metric",
    "register_scorer",
    "score_items",
    "score_predictions",
    "scorer_for_task",
    "all_scorers",
    "task_file_golds",
    "write_results",
]
