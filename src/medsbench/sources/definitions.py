"""Official task definitions for converted task files (``data convert --definitions FILE``).

The file is MedS-Ins' ``RewriteDefinitions.json`` shape: one object keyed by task id,
each value ``{"original_def": str | [str, ...], "auto_rewrite_def": [...], ...}``. It is
CC BY-SA and is never vendored: the user passes its path. :func:`load_official_definitions`
is the one parser of that shape in ``medsbench.sources``.

While :func:`using_definitions` is active, :func:`medsbench.sources.registry.task_meta`
writes the official ``original_def`` as a task file's ``Definition`` when the file's task
id has one, keeps our own definition otherwise, and records which one it used in the
``medsbench`` metadata block (``definition_source``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import read_json, sha256_file

OURS = "medsbench"


@dataclass(frozen=True)
class OfficialDefinitions:
    """Task id -> official definition text, with where it came from."""

    path: Path
    sha256: str
    texts: dict[str, str] = field(default_factory=dict)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.texts

    def __len__(self) -> int:
        return len(self.texts)


def _original_def(value: Any) -> str | None:
    text = value.get("original_def") if isinstance(value, dict) else value
    if isinstance(text, list):
        text = next((t for t in text if isinstance(t, str) and t.strip()), None)
    return text if isinstance(text, str) and text.strip() else None


def load_official_definitions(path: str | os.PathLike) -> OfficialDefinitions:
    """Parse a ``{task_id: {"original_def": str | list, ...}}`` file; a bad entry is one error line."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise MedsbenchError("definitions file must be one JSON object {task_id: {original_def, ...}}", where=str(path))
    texts: dict[str, str] = {}
    for task_id, value in data.items():
        text = _original_def(value)
        if text is None:
            raise MedsbenchError(f"{task_id}: original_def missing or not a non-empty string (or list of strings)",
                                 where=str(path))
        texts[str(task_id).strip()] = text
    if not texts:
        raise MedsbenchError("definitions file has no task entries", where=str(path))
    return OfficialDefinitions(path=path, sha256=sha256_file(path), texts=texts)


_ACTIVE: ContextVar[OfficialDefinitions | None] = ContextVar("medsbench_official_definitions", default=None)


@contextlib.contextmanager
def using_definitions(defs: OfficialDefinitions | None) -> Iterator[None]:
    """Converters run inside this block write the official definitions of ``defs`` (None: ours)."""
    token = _ACTIVE.set(defs)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def choose_definition(task_id: str | None, ours: str) -> tuple[str, dict[str, Any]]:
    """The definition to write for ``task_id`` and the metadata saying which source it is."""
    defs = _ACTIVE.get()
    if defs is None or task_id is None or task_id not in defs:
        info: dict[str, Any] = {"definition_source": OURS}
        if defs is not None:
            info["definition_note"] = f"no entry for this task id in {defs.path.name}: medsbench's own definition"
        return ours, info
    return defs.texts[task_id], {
        "definition_source": f"official original_def from {defs.path.name}",
        "definition_file_sha256": defs.sha256,
        "definition_license": "that of the definitions file (MedS-Ins' RewriteDefinitions.json: CC BY-SA)",
        "medsbench_definition": ours,
    }
