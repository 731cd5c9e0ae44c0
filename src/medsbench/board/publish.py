"""Publishing a run: a run folder -> :mod:`medsbench.board.ingest` (checks, a typed BoardRun) -> the
paired comparisons it takes part in -> :class:`medsbench.board.store.Store` (one transaction).

``add_run`` is idempotent: re-adding a run whose files, options and task files are unchanged is a no-op
(the store, including ``last_update``, stays the same). A run with failed items, or one that did not
finish, is refused unless ``allow_partial``: failed items are missing, never scores of 0. A run none of
whose items was answered is always refused. ``baseline`` names another stored run this one is compared
with (a tuned model vs its base): the paired test over the items both share is computed here, and again
whenever either run is added anew; without ``baseline`` an existing link of this run is kept.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from medsbench.board.ingest import AddOptions, build_board_run, check_planned_ids, fingerprint, identify
from medsbench.board.ingest import read_run_folder, task_file_stats
from medsbench.board.store import SCHEMA_VERSION, Store
from medsbench.errors import MedsbenchError
from medsbench.metrics.compare import compare_rows

log = logging.getLogger(__name__)

COMPARE_RESAMPLES = 1000
COMPARE_METHOD = "permutation"
COMPARE_SEED = 0


def add_run(store: Store, run_dir: str | os.PathLike, options: AddOptions | None = None, **fields: Any) -> str:
    """Publish ``run_dir`` in ``store``; ``fields`` are those of :class:`AddOptions`. Returns ``"added"``,
    ``"updated"`` or ``"unchanged"``."""
    options = options or AddOptions(**fields)
    files = read_run_folder(run_dir)
    ident = identify(files, options)
    stats = task_file_stats(files.manifest)
    check_planned_ids(files, stats)
    fp = fingerprint(files, ident, options, stats)
    with store.lock():
        state = store.run_state(ident.name)
        if state is not None and state.kind == "reported":
            raise MedsbenchError(f"run name {ident.name!r} is taken by a reported (seeded) row")
        baseline = _check_baseline(store, ident.name, options.baseline) if options.baseline is not None else (
            state.baseline if state is not None else None)
        if (state is not None and state.fingerprint == fp and state.store_version == SCHEMA_VERSION
                and state.baseline == baseline):
            return "unchanged"
        other = store.reported_model_like(ident.model)
        if other is not None:  # "gpt-4" measured beside "GPT-4" reported would read as the same model
            raise MedsbenchError(
                f"model name {ident.model!r} is (up to case) the reported (seeded) row {other!r}; pick another name "
                f"with --model-name (e.g. '{ident.model} (ours)') so measured and reported numbers stay apart")
        run = build_board_run(files, ident, options, stats)
        comparisons: dict[str, tuple[str, dict[str, Any]]] = {}
        if baseline is not None:
            comparisons[run.name] = (baseline, compare(run.rows, store.scoring_rows(baseline), run.name, baseline))
        for dep in store.dependents(run.name):
            try:
                comparisons[dep] = (run.name, compare(store.scoring_rows(dep), run.rows, dep, run.name))
            except MedsbenchError as exc:  # the link is dropped with the old rows; say why
                log.warning("run %r is no longer compared with %r: %s", dep, run.name, exc)
        store.put_run(run, comparisons)
    return "updated" if state is not None else "added"


def _check_baseline(store: Store, name: str, baseline: str) -> str:
    if baseline == name:
        raise MedsbenchError(f"run {name!r} cannot be its own baseline")
    kind = store.run_kind(baseline)
    if kind is None:
        raise MedsbenchError(f"no stored run named {baseline!r} to compare with (add the base run first; "
                             "see `medsbench board list`)")
    if kind == "reported":
        raise MedsbenchError(f"{baseline!r} is a reported (seeded) row without predictions; a baseline must be a "
                             "run scored here")
    return baseline


def compare(rows: list[Any], base_rows: list[Any], run: str, baseline: str) -> dict[str, Any]:
    """:func:`medsbench.metrics.compare.compare_rows` of a run (A) against its baseline (B)."""

    try:
        return compare_rows(rows, base_rows, resamples=COMPARE_RESAMPLES, seed=COMPARE_SEED, method=COMPARE_METHOD)
    except MedsbenchError as exc:
        raise MedsbenchError(f"cannot compare run {run!r} with baseline {baseline!r}: {exc}") from None
