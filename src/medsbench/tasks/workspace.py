"""The workspace's task folder: scanning, ordering, selecting and loading task files.

This module is the one place that

* scans a task folder (``find_task_files``: task id -> {split: path}),
* orders task ids (``task_order``: ``task2`` before ``task10``),
* resolves an ``eval --tasks`` selection against the catalog and the folder
  (``resolve_tasks``), including tasks that are not in the catalog but whose
  file records a MedS-Bench category (``medsbench.bench_category``, as written by the converters and
  ``medsbench data pull``),
* loads official definitions by task id (``load_definitions``), and
* validates on read (``load_task``, ``validate_selected``) with the rules of
  ``medsbench data validate`` (:mod:`medsbench.tasks.validate`).

Validation before a run blocks on structural problems only: an unreadable
file, an instance without ``input`` or ``output`` (or of the wrong type, or
empty), a missing or empty ``Definition``. Data-quality findings that
``data validate`` also reports (duplicate ids or inputs, a positive example
reappearing, missing descriptive metadata keys) do not block a run: the
released MedS-Bench files have some of them (``medsbench data audit`` counts
them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.tasks.catalog import CatalogEntry, catalog, task_order
from medsbench.tasks.format import Task, read_meta, read_task, split_of, task_id_of
from medsbench.tasks.definitions import read_definitions_file
from medsbench.tasks.validate import validate_file

log = logging.getLogger(__name__)

BUILD_HINT = "medsbench data convert --all --raw ../shared/data/raw --out {tasks}"
# Fields whose errors make a task file unusable for a run (see the module docstring).
_BLOCKING_FIELDS = frozenset({"file", "Instances", "input", "output", "Definition"})
_NON_BLOCKING_PREFIXES = ("duplicate", "a positive example")


def find_task_files(tasks_dir: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """Map task id -> {split: path} for every task file in a workspace folder.

    Reads only each file's metadata (task id and split), so it is cheap even
    for huge files. Hidden files and files without a task id are skipped.
    """
    root = Path(tasks_dir)
    found: dict[str, dict[str, Path]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.iterdir()):
        if path.suffix not in (".json", ".jsonl") or path.name.startswith("."):
            continue
        meta = read_meta(path)
        tid = task_id_of(meta, path)
        if tid is None:
            continue
        found.setdefault(tid, {})[split_of(meta, path)] = path
    return dict(sorted(found.items(), key=lambda kv: task_order(kv[0])))


def load_definitions(path: str | os.PathLike | None) -> dict[str, str]:
    """Official definitions by task id (RewriteDefinitions.json: {task: {original_def, ...}})."""
    if path is None:
        return {}

    return read_definitions_file(path).originals()


def task_source(path: str | os.PathLike) -> dict | None:
    """Where a task file came from, as ``medsbench data pull`` records it (repo, revision, commit, path, sha256),
    for a run manifest; None for files built by the converters."""
    ours = read_meta(path).get("medsbench")
    source = ours.get("source") if isinstance(ours, dict) else None
    return dict(source) if isinstance(source, dict) else None


def _blocking(problem) -> bool:
    return (
        problem.level == "error"
        and problem.field in _BLOCKING_FIELDS
        and not problem.message.startswith(_NON_BLOCKING_PREFIXES)
    )


def check_task_file(path: str | os.PathLike) -> None:
    """Raise one ``MedsbenchError`` line (file, instance index, field) for the first blocking problem."""

    for problem in validate_file(path):
        if _blocking(problem):
            raise MedsbenchError(
                f"{problem.field}: {problem.message} (run `medsbench data validate {problem.path}` for every problem)",
                where=problem.path if problem.index is None else f"{problem.path}:{problem.index}",
            )


def validate_selected(files: Iterable[str | os.PathLike] | dict[str, dict[str, Path]]) -> None:
    """Check every selected task file before any compute is spent; raise on the first blocking problem.

    ``files`` is a list of paths or the ``{task id: {split: path}}`` map of
    :func:`find_task_files` / :func:`resolve_tasks`.
    """
    if isinstance(files, dict):
        paths = [p for splits in files.values() for _, p in sorted(splits.items())]
    else:
        paths = list(files)
    for path in paths:
        check_task_file(path)


def load_task(path: str | os.PathLike) -> Task:
    """Read a whole task file after checking it (one ``MedsbenchError`` line on a blocking problem)."""
    check_task_file(path)
    return read_task(path)


def workspace_entry(task_id: str, splits: dict[str, Path]) -> CatalogEntry | None:
    """A catalog entry for a task that is not in the catalog, from its file's ``medsbench`` metadata."""
    path = splits.get("test")
    if path is None:
        return None
    ours = read_meta(path).get("medsbench")
    if not isinstance(ours, dict):
        return None
    cat = catalog()
    category = ours.get("bench_category")
    if category not in cat.categories:
        return None
    c = cat.categories[category]
    slug = str(ours.get("slug") or task_id)
    return CatalogEntry(
        id=task_id, slug=slug, title=str(ours.get("title") or slug), category=category,
        dataset=str(ours.get("dataset") or "-"), language=str(ours.get("language") or "en"),
        availability="workspace", shots=c.shots, max_new_tokens=c.max_new_tokens,
        note="not in the packaged catalog: category from the task file",
    )


def resolve_tasks(
    selection: str, tasks_dir: Path, *, validate: bool = True
) -> tuple[list[CatalogEntry], dict[str, dict[str, Path]], list[str]]:
    """Resolve ``--tasks`` (ids, category keys, ``all``, ``available``, ``quick``) against the catalog and a task folder.

    ``quick`` is one available benchmark task per category (the first in catalog order): a
    smoke test of every category, as the main job runs it.

    Returns (entries in task order, every task's files, selected ids skipped
    for lack of a test file). Explicit ids without a test file are an error;
    categories and ``all`` skip them. Tasks absent from the catalog are
    selectable when their test file names a MedS-Bench category. With
    ``validate`` (the default) the chosen files are checked with
    :func:`validate_selected` before anything else runs.
    """
    tasks_dir = Path(tasks_dir)
    files = find_task_files(tasks_dir)
    hint = BUILD_HINT.format(tasks=tasks_dir)
    if not any("test" in splits for splits in files.values()):
        raise MedsbenchError(f"no task files in {tasks_dir}: build them with `{hint}` (or pass --build-from RAW_DIR)")
    cat = catalog()
    extra = {
        tid: e for tid, sp in files.items() if tid not in cat.tasks and (e := workspace_entry(tid, sp)) is not None
    }
    items = [s.strip() for s in selection.split(",") if s.strip()]
    if not items:
        raise MedsbenchError("empty --tasks selection")
    chosen: dict[str, CatalogEntry] = {}
    skipped: list[str] = []
    for item in items:
        if item == "available":
            chosen.update({tid: cat.tasks[tid] for tid, sp in files.items() if tid in cat.tasks and "test" in sp})
            chosen.update(extra)
            continue
        if item == "quick":
            firsts: dict[str, CatalogEntry] = {}
            for e in cat.tasks.values():
                if "test" in files.get(e.id, {}):
                    firsts.setdefault(e.category, e)
            chosen.update({e.id: e for e in firsts.values()})
            continue
        if item in extra:
            chosen[item] = extra[item]
            continue
        entries = cat.select(item)  # raises one clear line for unknown ids/categories
        explicit = cat.find(item) is not None  # a task named by id or name: it must run
        for e in entries:
            if "test" in files.get(e.id, {}):
                chosen[e.id] = e
            elif explicit:
                raise MedsbenchError(f"task {e.id} ({e.title}) has no test file in {tasks_dir}: build it with `{hint}`")
            else:
                skipped.append(e.id)
        if item == "all" or item in cat.categories:
            chosen.update({tid: e for tid, e in extra.items() if item == "all" or e.category == item})
    if not chosen:
        raise MedsbenchError(f"none of the selected tasks ({selection}) has a test file in {tasks_dir}: build them with `{hint}`")
    ordered = sorted(chosen.values(), key=lambda e: task_order(e.id))
    if validate:
        validate_selected({e.id: files[e.id] for e in ordered})
    return ordered, files, skipped
