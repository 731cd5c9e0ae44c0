"""Per-task statistics of a folder of task files (streamed)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import _first, iter_instances, read_meta, split_of, task_id_of
from medsbench.tasks.validate import task_files_in


@dataclass(frozen=True)
class TaskStats:
    file: str
    task_id: str | None
    split: str
    category: str
    language: str
    instances: int
    mean_input_chars: float
    mean_output_chars: float

    def as_dict(self) -> dict:
        return asdict(self)


def _label(value: object) -> str:
    """A metadata label as text; a malformed one (not a string) shows as '?' (``data validate`` names it)."""
    value = _first(value)
    if value is None:
        return ""
    return value if isinstance(value, str) else "?"


def task_stats(path: str | os.PathLike) -> TaskStats:
    meta = read_meta(path)
    tid = task_id_of(meta, path)
    entry = catalog().get(tid) if tid else None
    n = in_chars = out_chars = 0
    for inst in iter_instances(path):
        n += 1
        in_chars += len(inst.input) if isinstance(inst.input, str) else 0
        out_chars += len(inst.target) if isinstance(inst.output, list) and inst.output and isinstance(inst.target, str) else 0
    cats = meta.get("Categories")
    category = entry.category if entry else (_label(cats) if cats else "")
    return TaskStats(
        file=Path(path).name,
        task_id=tid,
        split=split_of(meta, path),
        category=category,
        language=_label(meta.get("Input_language")),
        instances=n,
        mean_input_chars=round(in_chars / n, 1) if n else 0.0,
        mean_output_chars=round(out_chars / n, 1) if n else 0.0,
    )


def folder_stats(paths) -> list[TaskStats]:
    return [task_stats(p) for p in task_files_in(paths)]
