"""``RunFolder``: the one reader and writer of a run folder's files.

::

    manifest.json       RunManifest (the run's EvalConfig, or a submission; task files and their sha256)
    predictions.jsonl   PredictionRow per item, in plan order (appended as a crash journal while running)
    predictions.csv     the official submission format (task_id,input,GT,output)
    results.json        Results (medsbench.metrics)
    judged.json         JudgedResults (medsbench.judge)
    judgements.jsonl    every judge request's verdict and reply (medsbench.judge, for audits)
    contamination.json  ContaminationReport (medsbench.contam): items overlapping a corpus, clean scores
    .medsbench.lock     held by the one process writing the folder

Every stage (eval, merge, score, compare, judge, the board, submissions) goes through this class;
no other module spells these file names. A run folder is untrusted input for the stages that read
it: ids are checked against :mod:`medsbench.ids` when rows are read, and :meth:`RunFolder.predictions`
checks the rows against the manifest's plan (no unplanned task, no duplicated item, the planned
count and the planned instance ids of every task).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import orjson

from medsbench.errors import MedsbenchError
from medsbench.fileio import exclusive_lock, iter_jsonl, sha256_file, write_jsonl
from medsbench.ids import check_item_id, check_name
from medsbench.records.base import load_model, save_model, validate_record
from medsbench.records.config import EvalConfig
from medsbench.records.contamination import ContaminationReport
from medsbench.records.judged import JudgedResults, JudgementRow
from medsbench.records.manifest import RunManifest
from medsbench.records.predictions import (
    PredictionRow,
    encode_prediction,
    read_predictions,
    row_from,
    write_official_csv,
    write_predictions,
)
from medsbench.records.results import Results

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PREDICTIONS = "predictions.jsonl"
OFFICIAL_CSV = "predictions.csv"
RESULTS = "results.json"
JUDGED = "judged.json"
JUDGEMENTS = "judgements.jsonl"
CONTAMINATION = "contamination.json"
RUN_FILES = (MANIFEST, PREDICTIONS, OFFICIAL_CSV, RESULTS, JUDGED, JUDGEMENTS, CONTAMINATION)

JournalKey = tuple[str, str | None, str | None]  # (task id, instance id, prompt)


def items_digest(ids: Iterable[str | None]) -> str:
    """sha256 of a task's instance ids in order (the manifest's ``items_sha256``)."""
    h = hashlib.sha256()
    for item_id in ids:
        h.update(b"\x00" if item_id is None else item_id.encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def check_plan(manifest: RunManifest, rows: Iterable[PredictionRow], where: str) -> None:
    """The rows are exactly the manifest's plan: planned tasks only, no duplicated item, the planned
    count and (where recorded) the planned instance ids of every task. One line names what differs."""
    seen: set[tuple[str, str]] = set()
    per_task: dict[str, list[str | None]] = {}
    for row in rows:
        if row.task_id not in manifest.tasks:
            raise MedsbenchError(f"task {row.task_id} was never planned (not in {MANIFEST})", where=row.where or where)
        if row.id is not None:
            if (row.task_id, row.id) in seen:
                raise MedsbenchError(f"duplicated row: {row.task_id} item {row.id!r}", where=row.where or where)
            seen.add((row.task_id, row.id))
        per_task.setdefault(row.task_id, []).append(row.id)
    for tid, task in manifest.tasks.items():
        got = per_task.get(tid, [])
        if len(got) != task.n:
            raise MedsbenchError(f"{tid}: {len(got)} row(s), {MANIFEST} planned {task.n}", where=where)
        if task.items_sha256 is not None and items_digest(got) != task.items_sha256:
            raise MedsbenchError(f"{tid}: the rows' instance ids are not the ones {MANIFEST} planned", where=where)


class RunFolder:
    """A run folder on disk (it need not exist yet)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> RunFolder:
        """The run folder ``path`` names: the folder itself, or a file inside one (``RUN/predictions.jsonl``)."""
        p = Path(path)
        folder = cls(p if p.is_dir() else p.parent)
        if not folder.is_run():
            raise MedsbenchError(f"not a run folder (no {MANIFEST})", where=str(p))
        return folder

    # -- places --------------------------------------------------------------
    @property
    def name(self) -> str:
        """The folder's name, which names the run (checked against the name grammar)."""
        return check_name(self.path.resolve().name, "run folder name", str(self.path))

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def csv_path(self) -> Path:
        return self.path / OFFICIAL_CSV

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def judged_path(self) -> Path:
        return self.path / JUDGED

    def is_run(self) -> bool:
        return self.manifest_path.is_file()

    @contextmanager
    def lock(self) -> Iterator[Path]:
        """One writer per run folder (a second one fails at once, naming the holder)."""
        with exclusive_lock(self.path, "run folder") as held:
            yield held

    def clean_stale_tmp(self) -> list[Path]:
        """Remove ``.*.tmp`` files left by an interrupted atomic write (hold the lock first)."""
        removed = []
        for path in self.path.glob(".*.tmp"):
            if path.is_file():
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path)
        if removed:
            log.info("removed %d leftover temp file(s) in %s", len(removed), self.path)
        return removed

    # -- manifest ------------------------------------------------------------
    def manifest(self) -> RunManifest:
        manifest = load_model(RunManifest, self.manifest_path, "run manifest")
        for tid in manifest.tasks:
            check_name(tid, "task id", str(self.manifest_path))
        return manifest

    def save_manifest(self, manifest: RunManifest) -> None:
        save_model(manifest, self.manifest_path)

    def claim(self, config: EvalConfig, *, overwrite: bool = False) -> None:
        """Make this folder a new run of ``config``: a folder holding a run of another configuration is
        refused (``overwrite`` clears its files instead); a run of the same configuration continues."""
        if not self.is_run():
            return
        try:
            held = self.manifest()
        except MedsbenchError:
            held = None
        differ = ["not a readable run"] if held is None else (
            ["a submission"] if held.config is None else held.config.differences(config))
        if not differ:
            return
        if not overwrite:
            raise MedsbenchError(
                f"{self.path} holds a run of another configuration ({', '.join(differ)} differ): choose another --out, "
                "or --overwrite to replace it"
            )
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    # -- predictions ---------------------------------------------------------
    def predictions(self, *, plan: bool = True) -> list[PredictionRow]:
        """Every prediction row (ids checked); with ``plan``, checked against the manifest's plan."""
        rows = read_predictions(self.predictions_path, format="jsonl")
        if plan:
            check_plan(self.manifest(), rows, str(self.predictions_path))
        return rows

    def has_predictions(self) -> bool:
        return self.predictions_path.is_file()

    def predictions_sha256(self) -> str:
        return sha256_file(self.predictions_path)

    def write_predictions(self, rows: list[PredictionRow]) -> None:
        """predictions.jsonl and the official predictions.csv, each atomically."""
        write_predictions(self.predictions_path, rows)
        write_official_csv(self.csv_path, rows)

    def journal(self) -> dict[JournalKey, PredictionRow]:
        """Answered rows of an interrupted run, by (task id, instance id, prompt). A line torn by a kill
        or otherwise unreadable is skipped (its item is looked up in the cache or asked again); failed
        rows are never reused."""
        found: dict[JournalKey, PredictionRow] = {}
        if not self.predictions_path.is_file():
            return found
        with open(self.predictions_path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    row = row_from(orjson.loads(raw), f"{self.predictions_path}:{lineno}")
                except (orjson.JSONDecodeError, MedsbenchError):
                    continue
                if row.error is None and row.output is not None:
                    found[(row.task_id, row.id, row.prompt)] = row
        return found

    @contextmanager
    def journal_writer(self) -> Iterator[Journal]:
        """predictions.jsonl opened as a crash journal: rows appended and flushed as they finish."""
        with open(self.predictions_path, "wb") as fh:
            yield Journal(fh)

    # -- results and judged scores -----------------------------------------------
    def has_results(self) -> bool:
        return self.results_path.is_file()

    def results(self) -> Results:
        return Results.load(self.results_path)

    def save_results(self, results: Results) -> None:
        """results.json; inputs inside this folder are recorded by file name (the folder may move)."""
        for source in results.inputs:
            if Path(source.path).resolve().parent == self.path.resolve():
                source.path = Path(source.path).name
        results.save(self.results_path)

    def has_judged(self) -> bool:
        return self.judged_path.is_file()

    def judged(self) -> JudgedResults:
        return JudgedResults.load(self.judged_path)

    def save_judged(self, judged: JudgedResults) -> None:
        judged.save(self.judged_path)

    @property
    def judgements_path(self) -> Path:
        return self.path / JUDGEMENTS

    def has_judgements(self) -> bool:
        return self.judgements_path.is_file()

    def judgements(self) -> list[JudgementRow]:
        """Every row of judgements.jsonl, validated (one line names a bad row)."""
        return [validate_record(JudgementRow, obj, f"{self.judgements_path}:{line}", "judgement row")
                for line, obj in iter_jsonl(self.judgements_path)]

    def save_judgements(self, rows: list[JudgementRow]) -> None:
        write_jsonl(self.judgements_path, [r.model_dump(mode="json") for r in rows])

    # -- contamination report ------------------------------------------------------
    @property
    def contamination_path(self) -> Path:
        return self.path / CONTAMINATION

    def has_contamination(self) -> bool:
        return self.contamination_path.is_file()

    def contamination(self) -> ContaminationReport:
        """contamination.json; its flagged ids are checked against the id grammar where read."""
        report = ContaminationReport.load(self.contamination_path)
        where = str(self.contamination_path)
        for flag in report.items:
            check_name(flag.task_id, "task id", where)
            check_item_id(flag.id, where)
        for tid in report.tasks:
            check_name(tid, "task id", where)
        return report

    def save_contamination(self, report: ContaminationReport) -> None:
        report.save(self.contamination_path)

    def sha256(self, path: Path) -> str:
        """sha256 of one of this folder's files (to tie records to the files they were made from)."""
        return sha256_file(path)


class Journal:
    """Appends prediction rows to an open predictions.jsonl (see :meth:`RunFolder.journal_writer`)."""

    def __init__(self, fh: IO[bytes]):
        self._fh = fh

    def append(self, row: PredictionRow) -> None:
        self._fh.write(encode_prediction(row))

    def flush(self) -> None:
        self._fh.flush()
