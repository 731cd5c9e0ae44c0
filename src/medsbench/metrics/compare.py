"""Paired comparison of two prediction files over the same items (``medsbench compare A B``).

:func:`compare_rows` does the work on prediction rows (the board compares stored runs with it);
:func:`compare_predictions` reads two files and calls it.

Items are matched per task by instance id (JSONL) or by input text (CSV, or when ids are
missing); only items present in both files are compared. For each task and each category
(macro average over its tasks) we report A, B, their difference, a paired bootstrap CI of
the difference and a permutation-test p-value, in strict and reference mode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.metrics.score import TaskItems, score_items
from medsbench.metrics.stats import MetricFn, paired_test_groups
from medsbench.records.predictions import PredictionRow, check_unique, read_predictions
from medsbench.tasks.catalog import task_order as _task_order


ALPHA = 0.05  # a paired comparison claims a difference only when its 95% CI excludes 0 and p < ALPHA


def difference(delta: float, ci_lo: float, ci_hi: float, p_value: float, alpha: float = ALPHA) -> str:
    """The plain reading of one paired comparison row: ``"higher"`` or ``"lower"`` (the sign of
    ``delta``) only when the CI of the delta excludes 0 AND the p-value is below ``alpha``; else
    ``"none"`` (no difference found, which is not evidence of no difference)."""
    if ci_lo <= 0.0 <= ci_hi or p_value >= alpha:
        return "none"
    return "higher" if delta > 0 else "lower"


def _by_input(rows: list[PredictionRow]) -> list[PredictionRow]:
    return [r.model_copy(update={"id": None}) for r in rows]


def compare_predictions(
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    *,
    resamples: int = 1000,
    seed: int = 0,
    method: str = "permutation",
    format: str = "auto",
) -> dict[str, Any]:
    """Per task and per category: metric of A and B, delta, CI of delta, p-value (both modes)."""
    rows_a = read_predictions(path_a, format=format)
    rows_b = read_predictions(path_b, format=format)
    return {"a": str(path_a), "b": str(path_b), **compare_rows(rows_a, rows_b, resamples=resamples, seed=seed, method=method)}


def compare_rows(
    rows_a: Sequence[PredictionRow],
    rows_b: Sequence[PredictionRow],
    *,
    resamples: int = 1000,
    seed: int = 0,
    method: str = "permutation",
) -> dict[str, Any]:
    """The paired comparison of two systems' prediction rows (the work behind :func:`compare_predictions`).

    Returns ``{"method", "resamples", "seed", "tasks", "categories"}``; deltas are A - B.
    """
    rows_a, rows_b = list(rows_a), list(rows_b)
    check_unique(rows_a, "A")
    check_unique(rows_b, "B")
    ids_a = all(r.id is not None for r in rows_a)
    ids_b = all(r.id is not None for r in rows_b)
    if not (ids_a and ids_b):  # CSV submissions: pair by task id + input
        rows_a, rows_b = _by_input(rows_a), _by_input(rows_b)
    items_a, _, _ = score_items(rows_a)
    items_b, _, _ = score_items(rows_b)
    common = sorted(set(items_a) & set(items_b), key=_task_order)
    if not common:
        raise MedsbenchError("the two prediction files share no scored task")
    tasks: dict[str, Any] = {}
    groups: dict[str, dict[str, list]] = {}
    for tid in common:
        a, b = items_a[tid], items_b[tid]
        pos_b = {k: i for i, k in enumerate(b.keys)}
        ia = np.array([i for i, k in enumerate(a.keys) if k in pos_b], dtype=int)
        ib = np.array([pos_b[a.keys[i]] for i in ia], dtype=int)
        if ia.size == 0:
            continue
        entry: dict[str, Any] = {
            "category": a.category,
            "n": int(ia.size),
            "only_in_a": len(a.keys) - int(ia.size),
            "only_in_b": len(b.keys) - int(ia.size),
            "metric": a.scorer.primary,
        }
        for mode in ("strict", "reference"):
            sa, sb, fn = _mode_stats(a, b, ia, ib, mode)
            res = paired_test_groups([(sa, sb)], fn, resamples=resamples, seed=f"{seed}:{tid}:{mode}", method=method)
            values_a, values_b = fn(sa.sum(axis=0)), fn(sb.sum(axis=0))
            entry[mode] = {
                k: {"a": round(float(values_a[k]), 4), "b": round(float(values_b[k]), 4), **_r(v)} for k, v in res.items()
            }
            g = groups.setdefault(a.category, {"strict": [], "reference": []})
            g[mode].append((sa, sb, fn))
        tasks[tid] = entry
    categories: dict[str, Any] = {}
    for cat, modes in groups.items():
        out: dict[str, Any] = {"n_tasks": len(modes["strict"])}
        for mode, triples in modes.items():
            keysets = [set(fn(sa.sum(axis=0))) for sa, _, fn in triples]
            shared = set.intersection(*keysets)
            fns = [_only_keys(fn, frozenset(shared)) for _, _, fn in triples]
            res = paired_test_groups([(sa, sb) for sa, sb, _ in triples], fns, resamples=resamples,
                                     seed=f"{seed}:{cat}:{mode}", method=method)
            out[mode] = {k: _r(v) for k, v in res.items()}
        categories[cat] = out
    if not tasks:
        raise MedsbenchError("the two prediction files share no item (matched by task and instance id, or by input "
                             "where ids are missing): nothing to compare")
    return {
        "method": method,
        "resamples": resamples,
        "seed": seed,
        "tasks": tasks,
        "categories": categories,
    }


def _only_keys(fn: MetricFn, keep: frozenset[str]) -> MetricFn:
    """``fn`` restricted to the metric names in ``keep``."""
    return lambda s: {k: v for k, v in fn(s).items() if k in keep}


def _mode_stats(a: TaskItems, b: TaskItems, ia: np.ndarray, ib: np.ndarray, mode: str):
    if mode == "strict":
        return a.strict[ia], b.strict[ib], a.strict_metrics
    # reference: an item the official script skips in one file contributes nothing there
    sa = a.reference[ia] * a.ref_counted[ia, None]
    sb = b.reference[ib] * b.ref_counted[ib, None]
    return sa, sb, a.reference_metrics


def _r(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "delta": round(float(v["delta"]), 4),
        "ci": [round(float(x), 4) for x in v["ci"]],
        "p_value": round(float(v["p_value"]), 4),
    }
