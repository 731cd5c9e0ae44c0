"""Scores on disjoint subsets of a run's items: clean vs contaminated (``medsbench contam``).

:func:`contamination_scores` scores a run's rows once (:func:`medsbench.metrics.score.score_items`,
both modes, the task files' label sets) and splits each task's per-item statistics by the flags: the
clean items' metrics, the contaminated items' metrics (each with a 95% bootstrap CI) and their
difference (clean minus contaminated), whose CI resamples each subset within itself
(:func:`medsbench.metrics.stats.bootstrap_combined_ci`: the subsets are disjoint, not paired). Failed
items are in neither subset (missing, never a 0). A category's clean score is the mean of its tasks'
clean scores (the official macro average).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from medsbench.metrics.score import TaskItems, score_items
from medsbench.metrics.slices import macro_mean, pooled, rounded_ci
from medsbench.metrics.stats import bootstrap_combined_ci
from medsbench.records.contamination import CategoryClean, Difference, SubsetScore, TaskContamination
from medsbench.records.predictions import PredictionRow


def _diff(a: list[np.ndarray]) -> np.ndarray:
    return a[0] - a[1]


def subset_score(items: TaskItems, mask: np.ndarray, *, bootstrap: int, seed: str) -> SubsetScore | None:
    """The task's scores on the items in ``mask`` (None when it holds no scored item)."""
    if not mask.any():
        return None
    strict = items.strict[mask]
    ref = items.reference[mask & items.ref_counted]
    return SubsetScore(n=int(mask.sum()), n_reference=int(len(ref)),
                       **pooled(strict, ref, items.strict_metrics, items.reference_metrics, bootstrap=bootstrap,
                                seed=seed))


def difference(items: TaskItems, contaminated: np.ndarray, clean: SubsetScore, dirty: SubsetScore, *, bootstrap: int,
               seed: str) -> Difference:
    """Clean minus contaminated per metric, with a stratified bootstrap CI of the difference."""
    out = Difference(
        metrics={k: round(clean.metrics[k] - dirty.metrics[k], 4) for k in clean.metrics if k in dirty.metrics},
        reference={k: round(clean.reference[k] - dirty.reference[k], 4) for k in clean.reference if k in dirty.reference},
    )
    if bootstrap > 0:
        fn = items.strict_metrics
        out.ci = rounded_ci(bootstrap_combined_ci([(items.strict[~contaminated], fn), (items.strict[contaminated], fn)], _diff,
                                           resamples=bootstrap, seed=f"{seed}:difference:strict"))
        ref_clean = items.reference[~contaminated & items.ref_counted]
        ref_dirty = items.reference[contaminated & items.ref_counted]
        if len(ref_clean) and len(ref_dirty):
            fn = items.reference_metrics
            out.reference_ci = rounded_ci(bootstrap_combined_ci([(ref_clean, fn), (ref_dirty, fn)], _diff, resamples=bootstrap,
                                                         seed=f"{seed}:difference:reference"))
    return out


def contamination_scores(
    rows: Sequence[PredictionRow], flagged: set[tuple[str, str]], *, labels: Mapping[str, Iterable[str]] | None = None,
    bootstrap: int = 1000, seed: int = 0,
) -> tuple[dict[str, TaskContamination], dict[str, CategoryClean]]:
    """Per task: counts, clean and contaminated scores and their difference; per category: the clean macro average."""
    per_task, _, _ = score_items(rows, labels=labels)
    all_rows = Counter(r.task_id for r in rows)
    flagged_rows = Counter(r.task_id for r in rows if (r.task_id, r.id) in flagged)
    tasks: dict[str, TaskContamination] = {}
    for tid, items in per_task.items():
        dirty_mask = np.array([(tid, r.id) in flagged for r in items.rows], dtype=bool)
        key = f"{seed}:{tid}"
        clean = subset_score(items, ~dirty_mask, bootstrap=bootstrap, seed=f"{key}:clean")
        dirty = subset_score(items, dirty_mask, bootstrap=bootstrap, seed=f"{key}:contaminated")
        tasks[tid] = TaskContamination(
            category=items.category, metric=items.scorer.primary, n_items=all_rows[tid],
            n_contaminated=flagged_rows[tid], n_failed=items.n_failed, clean=clean, contaminated=dirty,
            difference=difference(items, dirty_mask, clean, dirty, bootstrap=bootstrap, seed=key)
            if clean is not None and dirty is not None else None)
    categories: dict[str, CategoryClean] = {}
    for category in dict.fromkeys(t.category for t in tasks.values()):
        members = {tid: t for tid, t in tasks.items() if t.category == category}
        have = {tid: t.clean for tid, t in members.items() if t.clean is not None}
        categories[category] = CategoryClean(
            tasks=list(have), without_clean=[tid for tid in members if tid not in have],
            metrics=macro_mean([c.metrics for c in have.values()]), reference=macro_mean([c.reference for c in have.values()]))
    return tasks, categories
