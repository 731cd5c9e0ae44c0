"""Terminal rendering: the CLI's :class:`medsbench.reporter.Reporter` (messages, progress bar) and the eval summary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from medsbench.reporter import Bar, Level
from medsbench.runs.run import RunResult

STYLE: dict[Level, str | None] = {"info": None, "detail": "dim", "warning": "yellow", "error": "red"}


class ConsoleReporter:
    """Messages as whole lines on stderr (coloured by level); one rich bar per run in a terminal."""

    def __init__(self, console: Console | None = None, *, bars: bool = True):
        self.console = console or Console(stderr=True)
        self.bars = bars

    def message(self, text: str, level: Level = "info") -> None:
        self.console.print(text, style=STYLE[level], markup=False, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def bar(self, total: int) -> Iterator[Bar | None]:
        if not (self.bars and self.console.is_terminal):
            yield None
            return
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"),
            console=self.console, transient=False,
        )
        with progress:
            yield _RichBar(progress, progress.add_task("", total=total, rate="", eta=""))


class _RichBar:
    def __init__(self, progress: Progress, task: object):
        self.progress, self.task = progress, task

    def update(self, *, done: int, total: int, description: str, rate: str, eta: str) -> None:
        self.progress.update(self.task, completed=done, total=total, description=description, rate=rate, eta=eta)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the eval summary


def _as_dict(results: Any) -> dict[str, Any]:
    """The scorer's return value as plain data (a ``Results`` record or a dict)."""
    if results is None:
        return {}
    if hasattr(results, "model_dump"):
        return results.model_dump(mode="json")
    return dict(results)


def _primary(task_result: dict[str, Any] | None) -> tuple[str, str, str]:
    if not task_result:
        return "-", "-", "-"
    key = task_result.get("metric") or next(iter(task_result.get("metrics") or {}), None)
    if key is None:
        return "-", "-", "-"
    strict = (task_result.get("metrics") or {}).get(key)
    ref = (task_result.get("reference") or {}).get(key)
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    return key, fmt(strict), fmt(ref)


def title(result: RunResult) -> str:
    head = f"{result.manifest.model}: {result.n_items} items ({result.n_cached} cached, {result.n_failed} failed, {result.n_truncated} truncated)"
    if result.limit is not None:
        share = f"{result.limit:.0%} of each task" if isinstance(result.limit, float) else f"first {result.limit} per task"
        head += f"; sample: {share}"
    return head


def summary_table(result: RunResult) -> Table:
    """Task ids are never cut: the id column keeps its full width; at 80 columns other cells fold, never ellipsize."""
    table = Table(title=title(result), box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    ids = list(result.per_task) or ["task"]
    table.add_column("task", no_wrap=True, min_width=max(len(t) for t in ids))
    for col in ("n", "failed", "coverage"):
        table.add_column(col, justify="right", overflow="fold")
    table.add_column("metric", overflow="fold")
    for col in ("strict", "ref", "trunc", "it/s"):
        table.add_column(col, justify="right", overflow="fold")
    scored = _as_dict(result.results).get("tasks", {})
    for tid, st in result.per_task.items():
        metric, strict, ref = _primary(scored.get(tid))
        generated = st["n"] - st["cached"] - st["failed"]
        rate = f"{generated / st['seconds']:.2f}" if generated > 0 and st["seconds"] > 0 else "-"
        answered = st["n"] - st["failed"]
        if answered == 0:  # nothing answered: no score to show, whatever the scorer made of it
            strict = ref = "-"
        coverage = f"{100 * answered / st['n']:.0f}%" if st["n"] else "-"
        table.add_row(tid, str(st["n"]), str(st["failed"]), coverage, metric, strict, ref, str(st["truncated"]), rate)
    return table


def failure_lines(result: RunResult) -> list[str]:
    """What failed and how to retry it (empty when nothing failed)."""
    if not result.n_failed:
        return []
    per = ", ".join(f"{tid}: {st['failed']}" for tid, st in result.per_task.items() if st["failed"])
    lines = [f"{result.n_failed} of {result.n_items} items failed ({per}); they are missing from the scores, not zeros"]
    for tid, messages in result.failures.items():
        for message in messages:
            lines.append(f"  {tid}: {message}")
    lines.append(f"retry the failed items with: medsbench eval --resume --out {result.run_dir}")
    return lines
