"""Calibration of closed-answer predictions: expected calibration error, Brier score, reliability.

Pure functions in scikit-learn's style (``y_true`` first, then ``y_prob``). ``y_prob`` holds one
probability vector per item, over that item's options (items may have different numbers of
options); ``y_true`` the index of the gold option. With likelihood scoring the probabilities are
the softmax of the options' log-likelihoods (:func:`option_probabilities`): the model's belief
*restricted to the listed options*.

- **Confidence** of an item: the top option's probability; its prediction is that option (the
  first on ties, like ``numpy.argmax``); *correct* when it is the gold option.
- **Expected calibration error** (Guo et al., 2017): items are put in :data:`N_BINS` equal-width
  bins of confidence, bin ``i`` = ``(i/B, (i+1)/B]`` (a confidence of 0 joins the first bin);
  ECE = sum over bins of ``|bin| / n * |accuracy(bin) - mean confidence(bin)|``, in [0, 1].
- **Brier score** (multi-class, Brier 1950): the mean over items of
  ``sum_k (p_k - [k == gold])^2``, in [0, 2] (0: every gold option given probability 1).

Every number is a function of additive per-item statistics (:func:`calibration_stats`), so the
bootstrap of :mod:`medsbench.metrics.stats` resamples items and recomputes them
(:func:`calibration_from_sums`), exactly like accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_BINS = 15
BINNING = (f"{N_BINS} equal-width bins of the top option's probability over [0, 1], bin i = (i/{N_BINS}, "
           f"(i+1)/{N_BINS}]; ECE weighs each bin's |accuracy - mean confidence| by its share of items")

ProbRows = Sequence[Sequence[float]] | Sequence[np.ndarray]


def option_probabilities(logprobs: Sequence[Sequence[float]] | Sequence[np.ndarray]) -> list[np.ndarray]:
    """The softmax of each item's option log-likelihoods (a probability vector per item)."""
    out = []
    for row in logprobs:
        x = np.asarray(row, dtype=float)
        if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
            raise ValueError("each item needs at least one finite log-likelihood")
        e = np.exp(x - x.max())
        out.append(e / e.sum())
    return out


def _checked(y_true: Sequence[int], y_prob: ProbRows) -> list[np.ndarray]:
    if len(y_true) != len(y_prob):
        raise ValueError(f"{len(y_true)} gold indices for {len(y_prob)} probability vectors")
    rows = []
    for gold, p in zip(y_true, y_prob):
        p = np.asarray(p, dtype=float)
        if p.ndim != 1 or p.size == 0 or np.any(p < 0) or abs(float(p.sum()) - 1.0) > 1e-6:
            raise ValueError("each probability vector must be non-negative and sum to 1")
        if not 0 <= int(gold) < p.size:
            raise ValueError(f"gold index {gold} outside the item's {p.size} options")
        rows.append(p)
    return rows


def bin_index(confidence: np.ndarray | float, n_bins: int = N_BINS) -> np.ndarray:
    """The bin of each confidence: ``(i/B, (i+1)/B]`` is bin ``i``; 0 goes to bin 0."""
    c = np.asarray(confidence, dtype=float)
    return np.clip(np.ceil(c * n_bins).astype(int) - 1, 0, n_bins - 1)


def calibration_stats(y_true: Sequence[int], y_prob: ProbRows, *, n_bins: int = N_BINS) -> np.ndarray:
    """Additive per-item statistics, shape ``(n, 4 + 3 * n_bins)``: ``[1, correct, confidence, brier]``
    then per bin ``[in bin, confidence if in bin, correct if in bin]``."""
    rows = _checked(y_true, y_prob)
    out = np.zeros((len(rows), 4 + 3 * n_bins))
    for i, (gold, p) in enumerate(zip(y_true, rows)):
        top = int(np.argmax(p))
        conf, correct = float(p[top]), float(top == int(gold))
        onehot = np.zeros(p.size)
        onehot[int(gold)] = 1.0
        b = int(bin_index(conf, n_bins))
        out[i, :4] = (1.0, correct, conf, float(np.sum((p - onehot) ** 2)))
        out[i, 4 + 3 * b: 7 + 3 * b] = (1.0, conf, correct)
    return out


def calibration_from_sums(sums: np.ndarray, *, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """``accuracy`` and ``confidence`` (0-100), ``ece`` (0-100, percentage points) and ``brier`` (0-2)
    from column sums of :func:`calibration_stats` (any leading shape, e.g. bootstrap resamples)."""
    s = np.asarray(sums, dtype=float)
    n = s[..., 0]
    safe = np.where(n > 0, n, 1.0)
    bins = s[..., 4:].reshape(*s.shape[:-1], n_bins, 3)
    gap = np.abs(bins[..., 2] - bins[..., 1]).sum(axis=-1)  # sum over bins of |sum correct - sum confidence|
    zero = n == 0
    return {
        "accuracy": np.where(zero, 0.0, 100 * s[..., 1] / safe),
        "confidence": np.where(zero, 0.0, 100 * s[..., 2] / safe),
        "ece": np.where(zero, 0.0, 100 * gap / safe),
        "brier": np.where(zero, 0.0, s[..., 3] / safe),
    }


def expected_calibration_error(y_true: Sequence[int], y_prob: ProbRows, *, n_bins: int = N_BINS) -> float:
    """ECE in [0, 1] over ``n_bins`` equal-width bins of top-option confidence."""
    if not len(y_true):
        raise ValueError("no items")
    return float(calibration_from_sums(calibration_stats(y_true, y_prob, n_bins=n_bins).sum(axis=0), n_bins=n_bins)["ece"]) / 100


def brier_score(y_true: Sequence[int], y_prob: ProbRows) -> float:
    """Multi-class Brier score in [0, 2]: mean of ``sum_k (p_k - [k == gold])^2``."""
    if not len(y_true):
        raise ValueError("no items")
    return float(calibration_stats(y_true, y_prob, n_bins=1)[:, 3].mean())


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per confidence bin: its edges, item count, mean confidence and accuracy (None for an empty bin)."""

    edges: list[float]
    counts: list[int]
    confidence: list[float | None]
    accuracy: list[float | None]


def reliability_curve(y_true: Sequence[int], y_prob: ProbRows, *, n_bins: int = N_BINS) -> ReliabilityCurve:
    """The reliability diagram's data (accuracy against mean confidence per bin, both in [0, 1])."""
    return curve_from_sums(calibration_stats(y_true, y_prob, n_bins=n_bins).sum(axis=0), n_bins=n_bins)


def curve_from_sums(sums: np.ndarray, *, n_bins: int = N_BINS) -> ReliabilityCurve:
    bins = np.asarray(sums, dtype=float)[4:].reshape(n_bins, 3)
    counts = [int(round(c)) for c in bins[:, 0]]
    conf = [float(b[1] / b[0]) if b[0] else None for b in bins]
    acc = [float(b[2] / b[0]) if b[0] else None for b in bins]
    return ReliabilityCurve([round(i / n_bins, 4) for i in range(n_bins + 1)], counts, conf, acc)
