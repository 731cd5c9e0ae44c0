"""Checks a run makes before it spends compute, and when it reopens a run folder.

- :func:`validate_selected`: the selected task files pass the task-file rules that matter for
  evaluation (:func:`medsbench.tasks.workspace.validate_selected`), or one line names ``file:index: field``.
- :func:`verify_task_files`: ``--resume`` re-hashes every task file the manifest recorded.
- :func:`clean_stale_tmp`: temp files left by an interrupted atomic write are removed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file
from medsbench.records.manifest import RunManifest
from medsbench.tasks.workspace import validate_selected as _validate_selected

log = logging.getLogger(__name__)

# The one validation the runner calls before spending compute: the task-file rules that make an item
# unanswerable or unscorable (missing/empty Definition, an instance without input or output), one
# line naming file:index: field. Owned by medsbench.tasks.workspace.
validate_selected = _validate_selected


def verify_task_files(manifest: RunManifest) -> None:
    """Every task file recorded in the manifest still exists with the same sha256, or one line names it."""
    for task in manifest.tasks.values():
        for entry in task.files.values():
            path = Path(entry.path)
            if not path.is_file():
                raise MedsbenchError(f"task file changed since the run started: {path} (missing)")
            digest = sha256_file(path)
            if digest != entry.sha256:
                raise MedsbenchError(
                    f"task file changed since the run started: {path} (sha256 {digest[:12]}... != {entry.sha256[:12]}...)"
                )


def clean_stale_tmp(run_dir: str | os.PathLike) -> list[Path]:
    """Remove ``.*.tmp`` files left in ``run_dir`` by an interrupted atomic write (hold the run lock first)."""
    removed = []
    for path in Path(run_dir).glob(".*.tmp"):
        if path.is_file():
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
    if removed:
        log.info("removed %d leftover temp file(s) in %s", len(removed), run_dir)
    return removed
