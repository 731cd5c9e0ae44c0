"""medsbench.metrics: official-compatible (reference) and honest (strict) scoring of predictions.

Library entry points: :func:`score_predictions` (results.json content), :func:`write_results`,
:func:`load_predictions`, :func:`bootstrap_ci`, :func:`paired_test`, :func:`compare_predictions`.
"""

from medsbench.metrics.compare import compare_predictions
from medsbench.metrics.load import load_predictions
from medsbench.metrics.score import score_items, score_predictions, write_results
from medsbench.metrics.stats import bootstrap_ci, paired_test

__all__ = [
    "bootstrap_ci",
    "compare_predictions",
    "load_predictions",
    "paired_test",
    "score_items",
    "score_predictions",
    "write_results",
]
