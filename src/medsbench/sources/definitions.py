"""Official task definitions for converted task files (``data convert --definitions FILE``).

The file is MedS-Ins' ``RewriteDefinitions.json`` shape: one object keyed by task id,
each value ``{"original_def": str | [str, ...], "auto_rewrite_def": [...], ...}``. It is
CC BY-SA and is never vendored: the user passes its path. :func:`load_official_definitions`
reads it through :func:`medsbench.tasks.definitions.read_definitions_file`, the one parser of that shape.

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

from medsbench.tasks.definitions import read_definitions_file

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


def load_official_definitions(path: str | os.PathLike) -> OfficialDefinitions:
    """The official ``original_def`` texts of a definitions file (read by :mod:`medsbench.tasks.definitions`)."""
    parsed = read_definitions_file(path)
    return OfficialDefinitions(path=parsed.path, sha256=parsed.sha256, texts=parsed.originals())


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
