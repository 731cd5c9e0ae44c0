"""Checks a run makes when it reopens a run folder: ``--resume`` re-hashes every recorded task file."""

from __future__ import annotations

from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file
from medsbench.records.manifest import RunManifest


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
