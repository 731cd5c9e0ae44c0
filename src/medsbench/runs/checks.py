"""Checks a run makes before it spends compute, and when it reopens a run folder.

- :func:`validate_selected`: the selected task files pass the task-file rules that matter for
  evaluation (:mod:`medsbench.tasks.validate`), or one line names ``file:index: field``.
- :func:`verify_task_files`: ``--resume`` re-hashes every task file the manifest recorded.
- :func:`clean_stale_tmp`: temp files left by an interrupted atomic write are removed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file
from medsbench.records.manifest import RunManifest

log = logging.getLogger(__name__)

# Problems that make an item unanswerable or unscorable: a missing/empty Definition, an instance
# without a string input or without a gold output, a file that cannot be read. Warnings and
# metadata that does not reach the prompt (Contributors, URL, ...) do not stop an eval.
BLOCKING_FIELDS = frozenset({"file", "Instances", "Definition", "input", "output"})
NOT_BLOCKING = ("duplicate input", "a positive example reappears")


def validate_selected(files: Iterable[str | os.PathLike]) -> None:
    """Refuse, in one line, task files an eval cannot use (the rules of ``medsbench data validate``).

    The one function the runner calls to validate its selected files: swap its body for
    ``medsbench.tasks.workspace.validate_selected`` when that lands.
    """
    from medsbench.tasks.validate import validate_file

    problems = []
    checked: list[str] = []
    for path in dict.fromkeys(str(f) for f in files):
        checked.append(path)
        for p in validate_file(path):
            if p.level != "error" or p.field not in BLOCKING_FIELDS:
                continue
            if p.field == "input" and p.message.startswith(NOT_BLOCKING):
                continue
            problems.append(p)
    if problems:
        more = f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise MedsbenchError(
            f"{problems[0]}{more}; fix the task file before evaluating (see: medsbench data validate {problems[0].path})"
        )


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
