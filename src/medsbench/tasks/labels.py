"""Closed label sets and label statistics shared by converters, ``data audit`` and the metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

# The ten hallmarks of cancer (HoC, task106), lower-case as the official scorer matches them.
HALLMARKS: tuple[str, ...] = (
    "sustaining proliferative signaling",
    "evading growth suppressors",
    "resisting cell death",
    "enabling replicative immortality",
    "inducing angiogenesis",
    "activating invasion and metastasis",
    "genomic instability and mutation",
    "tumor promoting inflammation",
    "cellular energetics",
    "avoiding immune destruction",
)


# ------------------------------------------------------------------ label statistics
# Pure functions over the gold labels of a closed-label task (one label string
# per instance). ``medsbench data audit`` and the scorer share them.


def label_distribution(labels: Sequence[str]) -> Counter[str]:
    """How often each label occurs (a ``collections.Counter``; empty for no labels)."""
    return Counter(labels)


def majority_baseline(labels: Sequence[str]) -> tuple[str | None, float | None]:
    """The majority class and the accuracy (percent, 0-100) of always answering it.

    Ties go to the label that sorts first, so the result does not depend on the
    order of the instances. ``(None, None)`` for an empty sequence (no number
    is better than a made-up one).
    """
    counts = label_distribution(labels)
    if not counts:
        return None, None
    label, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return label, 100.0 * count / len(labels)


def is_degenerate(labels: Sequence[str], threshold: float = 0.95) -> bool:
    """True when one label covers at least ``threshold`` of the instances (or only one label occurs).

    An empty sequence is not degenerate (there is nothing to judge).
    """
    counts = label_distribution(labels)
    if not counts:
        return False
    return len(counts) == 1 or max(counts.values()) / len(labels) >= threshold
