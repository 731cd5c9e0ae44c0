"""The final summary table of a run."""

from __future__ import annotations

from typing import Any

from medsbench.runs.run import RunResult


def _primary(task_result: dict[str, Any] | None) -> tuple[str, str, str]:
    if not task_result:
        return "-", "-", "-"
    key = task_result.get("metric") or next(iter(task_result.get("metrics") or {}), None)
    if key is None:
        return "-", "-", "-"
    strict = (task_result.get("metrics") or {}).get(key)
    ref = (task_result.get("reference") or {}).get(key)
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    return key, fmt(strict), fmt(ref)


def summary_table(result: RunResult):
    from rich.table import Table

    table = Table(title=f"{result.manifest.model}: {result.n_items} items ({result.n_cached} cached, {result.n_failed} failed, {result.n_truncated} truncated)")
    for col in ("task", "category", "n", "metric", "strict", "reference", "failed", "truncated", "items/s"):
        table.add_column(col, justify="right" if col not in ("task", "category", "metric") else "left", no_wrap=True)
    scored = (result.results or {}).get("tasks", {})
    for tid, st in result.per_task.items():
        metric, strict, ref = _primary(scored.get(tid))
        generated = st["n"] - st["cached"]
        rate = f"{generated / st['seconds']:.2f}" if generated and st["seconds"] > 0 else "-"
        table.add_row(tid, st["category"], str(st["n"]), metric, strict, ref, str(st["failed"]), str(st["truncated"]), rate)
    return table
