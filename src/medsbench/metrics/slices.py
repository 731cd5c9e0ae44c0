"""Averages over sets of tasks (macro and micro, with CIs), the category slices, and token usage.

* :func:`average`: a set of tasks' **macro** average (the mean of the tasks' metrics: what the
  official scripts report per category; CI from a stratified bootstrap, each task resampled within
  itself, :func:`medsbench.metrics.stats.bootstrap_combined_ci`) and **micro** average (the metric
  of the pooled items, where the tasks share a statistics kind per mode; CI from resampling the
  pooled items).
* :func:`category_slices`: per category, the same two averages for each language and each source
  (the dataset a task comes from, the catalog's ``dataset``) where the category mixes them.
* :func:`usage_of`: prompt and completion tokens, generation time and (with a
  :class:`medsbench.prices.Price`) cost of a set of prediction rows; unknown counts stay unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from medsbench.metrics.stats import bootstrap_ci, bootstrap_combined_ci
from medsbench.prices import Price
from medsbench.records.predictions import PredictionRow
from medsbench.records.results import CI, Average, SliceResult, TaskResult, Usage

SLICE_KINDS = ("language", "source")
MIXED_KINDS = "the tasks' items are scored with different statistics ({kinds}): they cannot be pooled"


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def rounded_ci(values: dict[str, list[float]]) -> dict[str, CI]:
    return {k: (round(v[0], 4), round(v[1], 4)) for k, v in values.items()}


def macro_mean(values: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over the tasks that have it (the official per-category average)."""
    sums: dict[str, list[float]] = {}
    for metrics in values:
        for k, v in metrics.items():
            sums.setdefault(k, []).append(v)
    return {k: round(float(np.mean(v)), 4) for k, v in sums.items()}


def _mean(values: list[np.ndarray]) -> np.ndarray:
    return np.mean(np.stack(values), axis=0)


def average(items: Sequence, results: dict[str, TaskResult], *, bootstrap: int, seed: str) -> tuple[Average, Average | None, str | None]:
    """(macro, micro or None, why no micro) of the scored tasks ``items`` (``TaskItems`` with rows).

    ``results`` are the tasks' :class:`TaskResult` (their rounded metrics make the macro mean, exactly
    as the category average has always been computed).
    """
    items = [it for it in items if it.keys]
    n = sum(len(it.keys) for it in items)
    macro = Average(
        n_tasks=len(items), n=n,
        metrics=macro_mean([results[it.task_id].metrics for it in items]),
        reference=macro_mean([results[it.task_id].reference for it in items]),
    )
    if bootstrap > 0 and items:
        macro.ci = rounded_ci(bootstrap_combined_ci([(it.strict, it.strict_metrics) for it in items], _mean,
                                             resamples=bootstrap, seed=f"{seed}:macro:strict"))
        ref = [(it.reference[it.ref_counted], it.reference_metrics) for it in items]
        if all(len(r) for r, _ in ref):
            macro.reference_ci = rounded_ci(bootstrap_combined_ci(ref, _mean, resamples=bootstrap, seed=f"{seed}:macro:reference"))
    kinds = {(it.scorer.strict_kind, it.scorer.reference_kind) for it in items}
    if not items:
        return macro, None, None
    if len(kinds) > 1:
        shown = ", ".join(sorted({k for pair in kinds for k in pair}))
        return macro, None, MIXED_KINDS.format(kinds=shown)
    return macro, _micro(items, bootstrap=bootstrap, seed=seed), None


def _micro(items: Sequence, *, bootstrap: int, seed: str) -> Average:
    """The pooled items' metrics (one statistics kind per mode) and CIs."""
    first = items[0]
    strict = np.concatenate([it.strict for it in items])
    reference = np.concatenate([it.reference[it.ref_counted] for it in items])
    return Average(n_tasks=len(items), n=int(strict.shape[0]),
                   **pooled(strict, reference, first.strict_metrics, first.reference_metrics, bootstrap=bootstrap,
                            seed=f"{seed}:micro"))


def pooled(strict: np.ndarray, reference: np.ndarray, strict_metrics: Callable[[np.ndarray], dict[str, Any]],
           reference_metrics: Callable[[np.ndarray], dict[str, Any]], *, bootstrap: int, seed: str) -> dict[str, Any]:
    """Both modes' metrics of pooled per-item statistics with their 95% bootstrap CIs (``metrics``,
    ``reference``, ``ci``, ``reference_ci``; no reference numbers without reference rows)."""
    out: dict[str, Any] = {
        "metrics": _round(strict_metrics(strict.sum(axis=0))),
        "reference": _round(reference_metrics(reference.sum(axis=0))) if len(reference) else {},
        "ci": {}, "reference_ci": {},
    }
    if bootstrap > 0:
        out["ci"] = rounded_ci(bootstrap_ci(strict, strict_metrics, resamples=bootstrap, seed=f"{seed}:strict"))
        if len(reference):
            out["reference_ci"] = rounded_ci(bootstrap_ci(reference, reference_metrics, resamples=bootstrap,
                                                   seed=f"{seed}:reference"))
    return out


def slice_key(kind: str, items, result: TaskResult) -> str:
    """The language (code) or source (dataset) of a task."""
    return result.language if kind == "language" else (result.source or items.task_id)


def category_slices(category: str, items: Sequence, results: dict[str, TaskResult], *, bootstrap: int,
                    seed: int) -> dict[str, dict[str, SliceResult]]:
    """Per slice kind the category mixes (more than one language, more than one source): each value's
    tasks with their macro and micro averages."""
    out: dict[str, dict[str, SliceResult]] = {}
    scored = [it for it in items if it.keys]
    for kind in SLICE_KINDS:
        groups: dict[str, list] = {}
        for it in scored:
            groups.setdefault(slice_key(kind, it, results[it.task_id]), []).append(it)
        if len(groups) < 2:
            continue
        out[kind] = {}
        for key, members in sorted(groups.items()):
            macro, micro, note = average(members, results, bootstrap=bootstrap, seed=f"{seed}:{category}:{kind}:{key}")
            out[kind][key] = SliceResult(tasks=[it.task_id for it in members], macro=macro, micro=micro, micro_note=note)
    return out


def usage_of(rows: Sequence[PredictionRow], price: Price | None = None) -> Usage:
    """Tokens, time and cost of the answered rows (failed rows are not counted).

    A token total is None when any counted row lacks its count; the cost is None then too.
    """
    answered = [r for r in rows if not r.failed]
    unknown = sum(1 for r in answered if r.prompt_tokens is None or r.output_tokens is None)
    prompt = None if any(r.prompt_tokens is None for r in answered) else sum(r.prompt_tokens or 0 for r in answered)
    output = None if any(r.output_tokens is None for r in answered) else sum(r.output_tokens or 0 for r in answered)
    seconds = None if any(r.seconds is None for r in answered) else round(sum(r.seconds or 0.0 for r in answered), 4)
    usage = Usage(n_items=len(answered), prompt_tokens=prompt, output_tokens=output, n_tokens_unknown=unknown,
                  item_seconds=seconds)
    if price is not None and answered:
        usage.cost_usd = price.cost(prompt, output)
        if usage.cost_usd is not None:
            usage.cost_per_1k_items_usd = round(1000 * usage.cost_usd / len(answered), 6)
    return usage


__all__ = ["SLICE_KINDS", "average", "category_slices", "macro_mean", "slice_key", "usage_of"]
