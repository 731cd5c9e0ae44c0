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
    table = Table(title=title(result), box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    ids = list(result.per_task) or ["task"]
    table.add_column("task", no_wrap=True, min_width=max(len(t) for t in ids))
    for col in ("n", "failed", "coverage"):
        table.add_column(col, justify="right", overflow="fold")
    table.add_column("metric", overflow="fold")
    for col in ("strict", "ref", "trunc", "it/s", "tokens"):  # tokens: prompt/completion
        table.add_column(col, justify="right", overflow="fold")
    results = _as_dict(result.results)
    scored = results.get("tasks", {})
    for tid, st in result.per_task.items():
        metric, strict, ref = _primary(scored.get(tid))
        generated = st["n"] - st["cached"] - st["failed"]
        rate = f"{generated / st['seconds']:.2f}" if generated > 0 and st["seconds"] > 0 else "-"
        answered = st["n"] - st["failed"]
        if answered == 0:  # nothing answered: no score to show, whatever the scorer made of it
            strict = ref = "-"
        coverage = f"{100 * answered / st['n']:.0f}%" if st["n"] else "-"
        usage = (scored.get(tid) or {}).get("usage")
        table.add_row(tid, str(st["n"]), str(st["failed"]), coverage, metric, strict, ref, str(st["truncated"]), rate,
                      tokens_text(usage))
    if results.get("usage"):
        table.caption = usage_line(results["usage"], results.get("price"))
    return table


def count_text(value: int | None) -> str:
    """A token count, short (``12.3k``, ``4.1M``); ``unknown`` when the backend did not report it."""
    if value is None:
        return "unknown"
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def tokens_text(usage: dict[str, Any] | None) -> str:
    """``prompt/completion`` tokens of a task's usage (``-`` without usage)."""
    if not usage:
        return "-"
    return f"{count_text(usage.get('prompt_tokens'))}/{count_text(usage.get('output_tokens'))}"


def usage_line(usage: dict[str, Any], price: dict[str, Any] | None) -> str:
    """One line of a run's tokens and, when priced, its cost in total and per 1,000 items."""
    known = usage.get("prompt_tokens") is not None and usage.get("output_tokens") is not None
    tokens = (f"{usage['prompt_tokens']:,} prompt + {usage['output_tokens']:,} completion tokens" if known else
              f"tokens unknown for {usage.get('n_tokens_unknown', 0)} of {usage.get('n_items', 0)} items "
              "(the backend did not report them)")
    line = f"{usage.get('n_items', 0)} answered items: {tokens}"
    if price is None:
        return line + "; not priced (--price IN/OUT or --prices FILE)"
    if usage.get("cost_usd") is None:
        return line + f"; priced at {price['input']}/{price['output']} USD per 1M tokens, cost unknown (tokens unknown)"
    return (line + f"; cost ${usage['cost_usd']:.4f} (${usage['cost_per_1k_items_usd']:.4f} per 1,000 items) at "
            f"{price['input']}/{price['output']} USD per 1M tokens")


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
