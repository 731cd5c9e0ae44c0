"""The one place that chains stages: convert -> eval -> score, shard merging, and the demo.

Stages below this layer never import each other sideways or to their right: ``medsbench.runs``
generates predictions and takes a scorer as a parameter; this module passes it the metrics
scorer (:func:`score_run`) and builds task files from raw data first when asked
(``--build-from``). Library users and the CLI call :func:`run_eval` and :func:`merge_runs` here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import ensure_writable
from medsbench.records.results import Results
from medsbench.runs import RunResult
from medsbench.runs import run_eval as _run_eval
from medsbench.runs.merge import merge_runs as _merge_runs
from medsbench.records.manifest import RunManifest

log = logging.getLogger(__name__)
DEFAULT_WORKSPACE = Path("medsbench-work")


def score_run(pred_path: Path) -> Results:
    """The metrics stage on a run's predictions.jsonl (with the run's protocol from its manifest)."""
    from medsbench.metrics import score_predictions

    return score_predictions(pred_path)


def build_tasks(raw: str | Path, tasks_dir: str | Path, say: Any = None) -> int:
    """Convert every raw source present under ``raw`` into ``tasks_dir``; returns the files written."""
    from medsbench.sources import convert_all

    say = say or log.info
    tasks_dir = Path(tasks_dir)
    ensure_writable(tasks_dir, "task folder")

    def on_source(name: str, written: list[Path] | None, skipped: str | None) -> None:
        if written is not None:
            say(f"{name}: {len(written)} file(s)")
        elif skipped and not skipped.endswith("not present"):  # absent datasets are normal; say why others failed
            say(f"skip {name}: {skipped}")

    report = convert_all(Path(raw), tasks_dir, on_source)
    say(f"built {len(report.files)} task file(s) in {tasks_dir}")
    return len(report.files)


def run_eval(model: Any, tasks: str | None = None, *, build_from: str | Path | None = None, score: bool = True,
             **kwargs: Any) -> RunResult:
    """Evaluate and score: :func:`medsbench.runs.run_eval` with the metrics scorer, after building the
    task files from ``build_from`` (a raw data folder) on a new run. Keyword arguments are those of
    :func:`medsbench.runs.run_eval`."""
    if build_from is not None:
        if kwargs.get("resume"):
            raise MedsbenchError("--resume continues a run on its recorded task files; --build-from cannot be used with it")
        console = kwargs.get("console")
        say = (lambda s: console.print(s, markup=False, highlight=False)) if console is not None else None
        build_tasks(build_from, Path(kwargs.get("workspace") or DEFAULT_WORKSPACE) / "tasks", say)
    return _run_eval(model, tasks, scorer=score_run if score else None, **kwargs)


def merge_runs(shards: Any, out: str | Path, *, score: bool = True, **kwargs: Any) -> RunManifest:
    """:func:`medsbench.runs.merge.merge_runs` with the metrics scorer (results.json of the merged run)."""
    return _merge_runs(shards, out, scorer=score_run if score else None, **kwargs)


__all__ = ["build_tasks", "merge_runs", "run_eval", "score_run"]
