"""The one reader of task-definition files in MedS-Ins' ``RewriteDefinitions.json`` shape.

One JSON object keyed by task id, each value ``{"original_def": str | [str, ...],
"auto_rewrite_def": [str, ...], ...}``. The paper's own file (CC BY-SA) is never vendored:
users pass its path. Used by ``data convert --definitions`` (:mod:`medsbench.sources.definitions`),
``eval --definitions`` (:func:`medsbench.tasks.workspace.load_definitions`) and the MedS-Ins
instruction paraphrases (:mod:`medsbench.ins.instructions`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import read_json, sha256_file


@dataclass(frozen=True)
class DefinitionEntry:
    original: str  # the official definition (original_def; the first non-empty one of a list)
    paraphrases: tuple[str, ...] = ()  # auto_rewrite_def, as given


@dataclass(frozen=True)
class DefinitionsFile:
    path: Path
    sha256: str
    entries: dict[str, DefinitionEntry] = field(default_factory=dict)

    def originals(self) -> dict[str, str]:
        return {tid: e.original for tid, e in self.entries.items()}


def _original(value: Any) -> str | None:
    text = value.get("original_def") if isinstance(value, dict) else value
    if isinstance(text, list):
        text = next((t for t in text if isinstance(t, str) and t.strip()), None)
    return text if isinstance(text, str) and text.strip() else None


def read_definitions_file(path: str | os.PathLike, what: str = "definitions file") -> DefinitionsFile:
    """Parse a definitions file; a malformed entry is one error line naming the file and task id.

    ``what`` names the file in errors (e.g. "instruction sidecar" for MedS-Ins paraphrase files).
    """
    path = Path(path)
    if not path.exists():
        raise MedsbenchError(f"{what} not found", where=str(path))
    data = read_json(path)
    if not isinstance(data, dict):
        raise MedsbenchError(f"{what} must be one JSON object {{task_id: {{original_def, ...}}}}", where=str(path))
    entries: dict[str, DefinitionEntry] = {}
    for task_id, value in data.items():
        where = f"{path}: {task_id}"
        text = _original(value)
        if text is None:
            raise MedsbenchError("original_def missing or not a non-empty string (or list of strings)", where=where)
        rewrites = value.get("auto_rewrite_def", []) if isinstance(value, dict) else []
        if not isinstance(rewrites, list) or not all(isinstance(r, str) for r in rewrites):
            raise MedsbenchError("auto_rewrite_def: must be a list of strings", where=where)
        entries[str(task_id).strip()] = DefinitionEntry(text, tuple(rewrites))
    if not entries:
        raise MedsbenchError(f"{what} has no task entries", where=str(path))
    return DefinitionsFile(path=path, sha256=sha256_file(path), entries=entries)
