"""Scores of likelihood-scored rows (``PredictionRow.loglik``): accuracy, acc_norm and calibration.

For each variant of a task (``letter``, ``text``; :mod:`medsbench.records.loglik`) and each item
with exactly one gold option among its options (the gold's label under the task's scorer):

- ``accuracy``: the option with the highest log-likelihood is the gold one;
- ``acc_norm``: the same after dividing each log-likelihood by its continuation's length in
  characters, and ``acc_bytes`` by its length in UTF-8 bytes (lm-evaluation-harness 0.4's
  ``acc_norm`` and ``acc_bytes``, which use the choice string without the delimiter);
- calibration of the softmax over the options (:mod:`medsbench.metrics.calibration`): ECE, Brier
  score, mean confidence, and the reliability diagram's bins;

with percentile bootstrap CIs (:func:`medsbench.metrics.stats.bootstrap_ci`, items resampled).
The task's ordinary metrics (the scorer reading each row's output) stay as they are: the output
is the primary variant's choice, so the scorer's accuracy equals that variant's ``accuracy`` on
items with one gold option.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medsbench.metrics.calibration import (
    N_BINS,
    calibration_from_sums,
    calibration_stats,
    curve_from_sums,
    option_probabilities,
)
from medsbench.metrics.registry import Scorer
from medsbench.metrics.stats import bootstrap_ci
from medsbench.records.predictions import PredictionRow
from medsbench.records.results import LoglikTaskResult, LoglikVariant, Reliability

METRICS = ("accuracy", "acc_norm", "acc_bytes", "ece", "brier", "confidence")


def gold_option(row: PredictionRow, scorer: Scorer) -> int | None:
    """Index of the row's gold option among its options (None: no single gold option there)."""
    assert row.loglik is not None
    label = scorer.label_of(row.reference, row.input)
    options = row.loglik.options
    return options.index(label) if label in options else None


def _argmax(values: np.ndarray) -> int:
    return int(np.argmax(values))


def variant_stats(rows: list[PredictionRow], golds: list[int], variant: str, *, n_bins: int = N_BINS) -> np.ndarray:
    """Per-item additive statistics: :func:`calibration_stats` plus ``[acc_norm correct, acc_bytes correct]``."""
    lls, norm, byte = [], [], []
    for row, gold in zip(rows, golds):
        assert row.loglik is not None
        v = row.loglik.variants[variant]
        x = np.asarray(v.logprobs, dtype=float)
        chars = np.array([max(len(c), 1) for c in v.continuations], dtype=float)
        nbytes = np.array([max(len(c.encode("utf-8")), 1) for c in v.continuations], dtype=float)
        lls.append(x)
        norm.append(float(_argmax(x / chars) == gold))
        byte.append(float(_argmax(x / nbytes) == gold))
    calib = calibration_stats(golds, option_probabilities(lls), n_bins=n_bins)
    return np.column_stack([calib, np.array(norm), np.array(byte)])


def metrics_from_sums(sums: np.ndarray, *, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Every loglik metric from column sums of :func:`variant_stats` (any leading shape)."""
    s = np.asarray(sums, dtype=float)
    out = calibration_from_sums(s[..., :-2], n_bins=n_bins)
    n = np.where(s[..., 0] > 0, s[..., 0], 1.0)
    out["acc_norm"] = 100 * s[..., -2] / n
    out["acc_bytes"] = 100 * s[..., -1] / n
    return out


def summarize_loglik(rows: list[PredictionRow], scorer: Scorer, task_id: str, *, bootstrap: int,
                     seed: int) -> LoglikTaskResult | None:
    """The loglik block of a task's results (None when its rows were not likelihood-scored)."""
    scored = [r for r in rows if r.loglik is not None]
    if not scored:
        return None
    pairs = [(r, g) for r in scored if (g := gold_option(r, scorer)) is not None]
    primary = scored[0].loglik.primary  # type: ignore[union-attr]
    names = [v for v in scored[0].loglik.variants if all(v in r.loglik.variants for r in scored)]  # type: ignore[union-attr]
    variants = {}
    for name in names if pairs else []:
        stats = variant_stats([r for r, _ in pairs], [g for _, g in pairs], name)
        sums = stats.sum(axis=0)
        values = metrics_from_sums(sums)
        curve = curve_from_sums(sums[:-2])
        ci = bootstrap_ci(stats, metrics_from_sums, resamples=bootstrap, seed=f"{seed}:{task_id}:loglik:{name}") \
            if bootstrap > 0 else {}
        variants[name] = LoglikVariant(
            n=len(pairs),
            metrics={k: round(float(values[k]), 4) for k in METRICS},
            ci={k: (round(v[0], 4), round(v[1], 4)) for k, v in ci.items() if k in METRICS},
            reliability=Reliability(edges=curve.edges, counts=curve.counts,
                                    confidence=[None if c is None else round(c, 4) for c in curve.confidence],
                                    accuracy=[None if a is None else round(a, 4) for a in curve.accuracy]),
        )
    return LoglikTaskResult(primary=primary, n_excluded=len(scored) - len(pairs), variants=variants)


def macro_loglik(tasks: Iterable[LoglikTaskResult]) -> dict[str, dict[str, float]]:
    """Per variant (and ``primary``: each task's primary variant) the mean of its tasks' metrics."""
    found: dict[str, list[dict[str, float]]] = {}
    for t in tasks:
        for name, v in t.variants.items():
            found.setdefault(name, []).append(v.metrics)
        if t.primary in t.variants:
            found.setdefault("primary", []).append(t.variants[t.primary].metrics)
    return {name: {k: round(float(np.mean([m[k] for m in ms])), 4) for k in METRICS} for name, ms in found.items()}
