"""Bootstrap confidence intervals and paired tests over per-item statistics.

Items are rows of additive statistics (see :mod:`medsbench.metrics.registry`); a metric
is a function of the column sums, so one resample is a sum over resampled rows. All
resamples of a chunk are drawn at once with numpy (no Python loop per resample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from medsbench.fileio import stable_seed

MetricFn = Callable[[np.ndarray], dict[str, np.ndarray]]
_CELLS_PER_CHUNK = 4_000_000  # resamples x items drawn at once (int64 indices: 32 MB)


def _chunks(total: int, n: int):
    step = max(1, _CELLS_PER_CHUNK // max(n, 1))
    for start in range(0, total, step):
        yield min(step, total - start)


def bootstrap_sums(stats: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Column sums of ``resamples`` bootstrap resamples of the rows: shape (resamples, k)."""
    stats = np.asarray(stats, dtype=float)
    n = stats.shape[0]
    out = []
    for size in _chunks(resamples, n):
        idx = rng.integers(0, n, size=(size, n))
        # how often each item is drawn in each resample, then one matrix product (BLAS) for the sums
        flat = (np.arange(size)[:, None] * n + idx).ravel()
        counts = np.bincount(flat, minlength=size * n).reshape(size, n).astype(float)
        out.append(counts @ stats)
    return np.concatenate(out) if out else np.zeros((0, stats.shape[1]))


def bootstrap_ci(
    stats: np.ndarray,
    metric_fn: MetricFn,
    *,
    resamples: int = 1000,
    seed: int | str = 0,
    alpha: float = 0.05,
) -> dict[str, list[float]]:
    """Percentile bootstrap CI (default 95%) for every metric ``metric_fn`` returns."""
    stats = np.asarray(stats, dtype=float)
    if stats.ndim != 2 or stats.shape[0] == 0 or resamples <= 0:
        return {}
    rng = np.random.default_rng(stable_seed(seed, "bootstrap"))
    values = metric_fn(bootstrap_sums(stats, resamples, rng))
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    return {k: [float(np.percentile(v, lo)), float(np.percentile(v, hi))] for k, v in values.items()}


def bootstrap_combined_ci(
    groups: Sequence[tuple[np.ndarray, MetricFn]],
    combine: Callable[[list[np.ndarray]], np.ndarray],
    *,
    resamples: int = 1000,
    seed: int | str = 0,
    alpha: float = 0.05,
) -> dict[str, list[float]]:
    """Percentile bootstrap CI of a combination of independent groups' metrics (a stratified bootstrap).

    Each group (its per-item statistics and metric function) is resampled within itself; per resample,
    ``combine`` turns the groups' metric values into one (``np.mean`` of them: a macro average over tasks;
    ``a - b``: the difference between two disjoint item sets). Only metrics every group has are combined.
    Groups without items make no CI (an empty dict).
    """
    if not groups or resamples <= 0 or any(np.asarray(s).ndim != 2 or np.asarray(s).shape[0] == 0 for s, _ in groups):
        return {}
    rng = np.random.default_rng(stable_seed(seed, "bootstrap-groups"))
    per_group = [fn(bootstrap_sums(np.asarray(s, dtype=float), resamples, rng)) for s, fn in groups]
    keys = [k for k in per_group[0] if all(k in g for g in per_group[1:])]
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out = {}
    for k in keys:
        dist = np.asarray(combine([g[k] for g in per_group]), dtype=float)
        out[k] = [float(np.percentile(dist, lo)), float(np.percentile(dist, hi))]
    return out


def _perm_sums(a: np.ndarray, b: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Column sums after swapping A and B on a random half of the items, ``size`` times."""
    swap = rng.integers(0, 2, size=(size, a.shape[0])).astype(float)
    diff = swap @ (b - a)
    return a.sum(axis=0) + diff, b.sum(axis=0) - diff


def paired_test(
    stats_a: np.ndarray,
    stats_b: np.ndarray,
    metric_fn: MetricFn,
    *,
    resamples: int = 1000,
    seed: int | str = 0,
    method: str = "permutation",
    alpha: float = 0.05,
) -> dict[str, dict[str, float | list[float]]]:
    """Paired comparison of systems A and B on the same items (row i of both = item i).

    Returns per metric: ``delta`` (A - B), its bootstrap ``ci`` (items resampled jointly) and
    a two-sided ``p_value``: from an approximate permutation test (swap A/B per item) or,
    with ``method="bootstrap"``, from the bootstrap distribution of the delta.
    """
    return paired_test_groups([(stats_a, stats_b)], metric_fn, resamples=resamples, seed=seed, method=method, alpha=alpha)


def paired_test_groups(
    groups: list[tuple[np.ndarray, np.ndarray]],
    metric_fn: MetricFn | list[MetricFn],
    *,
    resamples: int = 1000,
    seed: int | str = 0,
    method: str = "permutation",
    alpha: float = 0.05,
) -> dict[str, dict[str, float | list[float]]]:
    """Like :func:`paired_test` for a macro average over groups (tasks of a category):
    each group is resampled / permuted within itself and the metric is averaged over groups."""
    if method not in ("permutation", "bootstrap"):
        raise ValueError(f"unknown method {method!r}")
    fns = metric_fn if isinstance(metric_fn, list) else [metric_fn] * len(groups)
    rng = np.random.default_rng(stable_seed(seed, "paired", method))
    observed: dict[str, list[float]] = {}
    boot: dict[str, list[np.ndarray]] = {}
    perm: dict[str, list[np.ndarray]] = {}
    for (a, b), fn in zip(groups, fns):
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        if a.shape != b.shape or a.ndim != 2:
            raise ValueError("paired statistics must have the same shape (items x columns)")
        obs_a, obs_b = fn(a.sum(axis=0)), fn(b.sum(axis=0))
        n = a.shape[0]
        both = np.concatenate([a, b], axis=1)
        sums = bootstrap_sums(both, resamples, rng)
        ba, bb = fn(sums[:, : a.shape[1]]), fn(sums[:, a.shape[1]:])
        if method == "permutation":
            pa_list, pb_list = [], []
            for size in _chunks(resamples, n):
                pa, pb = _perm_sums(a, b, size, rng)
                pa_list.append(pa)
                pb_list.append(pb)
            pa_m, pb_m = fn(np.concatenate(pa_list)), fn(np.concatenate(pb_list))
        for key in obs_a:
            observed.setdefault(key, []).append(float(obs_a[key] - obs_b[key]))
            boot.setdefault(key, []).append(ba[key] - bb[key])
            if method == "permutation":
                perm.setdefault(key, []).append(pa_m[key] - pb_m[key])
    out: dict[str, dict[str, float | list[float]]] = {}
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    for key, deltas in observed.items():
        delta = float(np.mean(deltas))
        dist = np.mean(boot[key], axis=0)
        if method == "permutation":
            null = np.mean(perm[key], axis=0)
            p = (1 + np.sum(np.abs(null) >= abs(delta) - 1e-12)) / (1 + null.size)
        else:  # two-sided: how often the resampled delta falls on the other side of 0
            p = min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0)))
        out[key] = {
            "delta": delta,
            "ci": [float(np.percentile(dist, lo)), float(np.percentile(dist, hi))],
            "p_value": float(p),
        }
    return out
