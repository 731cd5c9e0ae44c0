"""The MedS-Ins builder's inputs: train-split task files, the benchmark test files, and their checks.

* ``discover``: the ``--tasks`` files of the configured splits (default train)
  and the ``--ins-files`` (every instance is training data), described once
  (:class:`InputFile`);
* ``bench_folders`` / ``bench_test_files``: where the benchmark test splits are
  (by default the test splits beside the train splits, i.e. the ``--tasks``
  folders, and the workspace's task folder) and which files hold them;
* ``validate_one``: the task-file validator (``medsbench.tasks.validate``) on one
  input, as a pure function that a worker process can run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.tasks.catalog import LANGUAGE_CODES
from medsbench.tasks.format import read_meta, split_of, task_id_of
from medsbench.tasks.validate import validate_file


UNKNOWN_CATEGORY = "unknown"  # a task file without Categories (e.g. a released MedS-Ins task nobody has categorised)


@dataclass
class InputFile:
    path: Path
    task_id: str
    origin: str  # "tasks" (ours, by split) or "ins" (official MedS-Ins files the user brings)
    definition: str
    category: str
    source: str
    language: str
    license: str


def _first(v: Any) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _language_code(name: str | None) -> str:
    if not name:
        return "unknown"
    return LANGUAGE_CODES.get(str(name).lower(), str(name).lower())


def describe(path: Path, origin: str) -> InputFile:
    """Task id, definition, category, source, language and licence of a task file, from its metadata."""
    meta = read_meta(path)
    raw_ours = meta.get("medsbench")
    ours = raw_ours if isinstance(raw_ours, dict) else {}
    cats = meta.get("Categories") or []
    cats = [cats] if isinstance(cats, str) else cats
    definition = _first(meta.get("Definition"))
    if not isinstance(definition, str) or not definition.strip():
        raise MedsbenchError("Definition: missing or empty", where=str(path))
    return InputFile(
        path=path,
        task_id=task_id_of(meta, path) or path.name.split(".")[0],
        origin=origin,
        definition=definition.strip(),
        category=str(cats[0]) if cats else UNKNOWN_CATEGORY,
        source=str(_first(meta.get("Source")) or path.name.split(".")[0]),
        language=_language_code(_first(meta.get("Input_language"))),
        license=str(ours.get("license") or "unknown (no medsbench licence field; see the file's Source/URL)"),
    )


def task_files(path: Path) -> list[Path]:
    """A task file, or the task files (``*.json``, ``*.jsonl``, not hidden) of a folder, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MedsbenchError("no such task file or folder", where=str(path))
    return sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and not p.name.startswith("."))


def discover(tasks: Sequence[str | os.PathLike], ins_files: Sequence[str | os.PathLike], splits: Sequence[str]) -> tuple[list[InputFile], list[str]]:
    """Input files: ``tasks`` entries filtered by split, ``ins_files`` entries taken whole."""
    out: dict[Path, InputFile] = {}
    skipped: list[str] = []
    for origin, roots in (("tasks", tasks), ("ins", ins_files)):
        for root in roots:
            for p in task_files(Path(root)):
                key = p.resolve()
                if key in out:
                    continue
                if origin == "tasks":
                    split = split_of(read_meta(p), p)
                    if split not in splits:
                        skipped.append(f"{p} ({split})")
                        continue
                out[key] = describe(p, origin)
    return list(out.values()), skipped


def bench_folders(tasks: Sequence[str | os.PathLike], workspace_tasks: str | os.PathLike | None) -> list[Path]:
    """The default folders of benchmark test splits: each ``--tasks`` folder (the folder of a ``--tasks``
    file) and the workspace's task folder, in that order, without repeats."""
    out: list[Path] = []
    for entry in (*tasks, *([workspace_tasks] if workspace_tasks is not None else [])):
        p = Path(entry)
        folder = p.parent if p.is_file() else p
        if folder.is_dir() and folder.resolve() not in {f.resolve() for f in out}:
            out.append(folder)
    return out


def bench_test_files(dirs: Sequence[str | os.PathLike], exclude: Sequence[Path] = ()) -> list[Path]:
    """The test-split task files in ``dirs`` (folders or files; each file once, inputs in ``exclude`` left out)."""
    skip = {p.resolve() for p in exclude}
    files: list[Path] = []
    for d in dirs:
        for p in task_files(Path(d)):  # a path that does not exist is an error: it was asked for
            key = p.resolve()
            if key not in skip and split_of(read_meta(p), p) == "test":
                skip.add(key)
                files.append(p)
    return files


def _blocking(problem) -> bool:
    """A validation error stops a build, except a missing category: it only labels the card ('unknown')."""
    if getattr(problem, "level", "error") != "error":
        return False
    return not (problem.field == "Categories" and problem.message == "no category given")


def validate_one(path: Path) -> tuple[str | None, int]:
    """(first blocking validation error line or None, number of other problems) of one task file."""

    problems = validate_file(path)
    errors = [pr for pr in problems if _blocking(pr)]
    if not errors:
        return None, len(problems)
    more = f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"task file failed validation: {errors[0]}{more}", len(problems) - len(errors)
