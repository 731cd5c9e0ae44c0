"""Submissions: validate predictions someone sent against our benchmark files, then publish them as
any run is published: validate -> a run folder (the stage records) -> score -> :func:`medsbench.board.publish.add_run`
(pending until approved).

Accepted formats: the official CSV (``task_id,input,GT,output``; other columns, such as a pandas index,
are ignored) and our ``predictions.jsonl``, both read by the one prediction reader
(:func:`medsbench.records.read_predictions`).
Every row must match one benchmark instance by (task_id, input) - ``input`` may also be the full
rendered prompt, whose last ``Input:``/``Output:`` query block is then matched - its GT must equal our reference
(a tampered reference is rejected), no item may appear twice, and each submitted task must be
covered completely (unless ``allow_partial``). File-level problems (unsafe name, size, columns,
encoding) raise :class:`MedsbenchError`; row-level problems are collected with their line numbers so a
rejection says exactly which rows and why.

Suspicious outputs are flagged, not rejected (:mod:`medsbench.board.flags`; approval stays manual).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.board.flags import SuspicionFlag, suspicion_flags
from medsbench.board.names import check_model_name, unique_slug
from medsbench.errors import MedsbenchError
from medsbench.records import PredictionRow, read_predictions
from medsbench.records.folder import RunFolder, items_digest
from medsbench.tasks.catalog import catalog
from medsbench.tasks.format import iter_instances
from medsbench.tasks.workspace import find_task_files
from medsbench.workspace import Workspace
from medsbench.metrics import score_predictions
from medsbench.records.results import Results
from medsbench.board.publish import add_run
from medsbench.fileio import sha256_file
from medsbench.fileio import sha256_text
from medsbench.records.manifest import ManifestTask, RunManifest, Submission, TaskFile, now
from medsbench.tasks.format import read_meta

DEFAULT_MAX_BYTES = 100 << 20  # the whole MedS-Bench test set with long outputs is well under this
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_LISTED = 50
SUBMISSION_PREFIX = "submission-"
DESCRIPTION_MAX = 2000


@dataclass(frozen=True)
class RowProblem:
    line: int | None  # physical line where the record starts (cells may span lines)
    task_id: str | None
    reason: str
    row: int | None = None  # 1-based data row (header not counted)

    def __str__(self) -> str:
        where = f"row {self.row} (line {self.line})" if self.line is not None else "file"
        task = f" [{self.task_id}]" if self.task_id else ""
        return f"{where}{task}: {self.reason}"


@dataclass
class SubmissionReport:
    path: Path
    format: str
    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)
    predictions: list[Any] = field(default_factory=list)  # medsbench.records.PredictionRow, one per matched row
    flags: list[SuspicionFlag] = field(default_factory=list)  # for the approver; never a rejection

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self, limit: int = MAX_LISTED) -> str:
        head = (f"{self.path.name}: {self.rows} rows ({self.format}), {len(self.problems)} problem(s), "
                f"{len(self.flags)} suspicion flag(s)")
        lines = [head]
        for tid, (got, total) in sorted(self.coverage.items()):
            lines.append(f"  coverage {tid}: {got}/{total}")
        for p in self.problems[:limit]:
            lines.append(f"  {p}")
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        for f in self.flags:
            lines.append(f"  FLAG {f}")
        if self.flags:
            lines.append("  flagged outputs need a careful look before `medsbench board approve`")
        return "\n".join(lines)


class SubmissionRejected(MedsbenchError):
    def __init__(self, report: SubmissionReport):
        self.report = report
        super().__init__(f"submission rejected:\n{report.describe()}")


def check_submission_path(path: str | os.PathLike, inbox: str | os.PathLike | None = None) -> Path:
    """Reject names that could walk out of a folder or hide what they are."""
    raw = os.fspath(path)
    parts = re.split(r"[/\\]", raw)
    if ".." in parts:
        raise MedsbenchError("path traversal ('..') is not allowed in a submission path", where=raw)
    p = Path(raw)
    if not _SAFE_FILE.match(p.name) or p.suffix.lower() not in (".csv", ".jsonl"):
        raise MedsbenchError(
            "submission file name must be letters, digits, '.', '_' or '-' and end in .csv or .jsonl", where=raw
        )
    if p.is_symlink():
        raise MedsbenchError("submission file must not be a symbolic link", where=raw)
    if inbox is not None:
        root = Path(inbox).resolve()
        if root not in p.resolve().parents:
            raise MedsbenchError(f"submission file is outside the inbox folder {root}", where=raw)
    if not p.is_file():
        raise MedsbenchError("file not found", where=raw)
    return p


def _norm(text: Any) -> str:
    return str(text).replace("\r\n", "\n").replace("\r", "\n").strip()


def _line_of(where: str | None) -> int | None:
    """The line number of a prediction row's ``where`` (``path:line``)."""
    tail = (where or "").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


class _Benchmark:
    """The benchmark items a submission is matched against, per task (read on first use)."""

    def __init__(self, tasks_dir: str | os.PathLike):
        self.tasks_dir = tasks_dir
        self.files = find_task_files(tasks_dir)
        self.by_input: dict[str, dict[str, list[Any]]] = {}
        self.by_id: dict[str, dict[str, Any]] = {}
        self.claimed: dict[tuple[str, str], str] = {}  # (task, instance id) -> "row R (line L)" that claimed it

    def task(self, tid: str) -> dict[str, list[Any]] | None:
        if tid not in self.by_input:
            split = self.files.get(tid, {}).get("test")
            if split is None:
                return None
            by_input: dict[str, list[Any]] = {}
            for inst in iter_instances(split):
                by_input.setdefault(_norm(inst.input), []).append(inst)
                self.by_id.setdefault(tid, {})[inst.id] = inst
            self.by_input[tid] = by_input
        return self.by_input[tid]

    def match(self, tid: str, row: Any) -> tuple[Any | None, str | None]:
        """The benchmark item a row answers, or why none: a row naming its item (predictions.jsonl) is
        matched by that id only, a row without one (the official CSV) by its input."""
        idx = self.by_input[tid]
        candidates = idx.get(_norm(row.input)) or idx.get(_query_of(row.input) or "\x00") or []
        if row.id is not None:
            named = self.by_id.get(tid, {}).get(row.id)
            if named is None:
                return None, f"unknown instance id {row.id!r}: not an item of {tid}'s test file"
            if named not in candidates:
                return None, f"the input of item {row.id!r} differs from the benchmark's: {_short(row.input)}"
            candidates = [named]
        if not candidates:
            return None, f"input matches no benchmark item of {tid}: {_short(row.input)}"
        gt = _norm(row.reference)
        same_gt = [inst for inst in candidates if gt in {_norm(o) for o in inst.output}]
        if not same_gt:
            return None, (f"GT differs from the benchmark reference (tampered or wrong file): got {_short(row.reference)}, "
                          f"expected {_short(candidates[0].target)}")
        free = [inst for inst in same_gt if (tid, inst.id) not in self.claimed]
        if not free:
            return None, f"duplicate row: this item was already given in {self.claimed[(tid, same_gt[0].id)]}"
        return free[0], None

    def coverage(self, report: SubmissionReport, allow_partial: bool) -> None:
        for tid, idx in sorted(self.by_input.items()):
            total = sum(len(v) for v in idx.values())
            got = sum(1 for (t, _) in self.claimed if t == tid)
            report.coverage[tid] = (got, total)
            if got < total and not allow_partial:
                missing = sorted({inst.id for v in idx.values() for inst in v if (tid, inst.id) not in self.claimed},
                                 key=_id_order)
                shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
                report.problems.append(RowProblem(
                    None, tid, f"partial coverage: {got} of {total} items (missing ids: {shown}); submit every item of a task"))


def validate_submission(
    path: str | os.PathLike,
    tasks_dir: str | os.PathLike,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_partial: bool = False,
    inbox: str | os.PathLike | None = None,
) -> SubmissionReport:
    """Check a submission against the benchmark (test split) task files in ``tasks_dir``."""
    p = check_submission_path(path, inbox)
    size = p.stat().st_size
    if size > max_bytes:
        raise MedsbenchError(f"file is {size} bytes, over the {max_bytes}-byte submission limit", where=str(p))
    fmt = "jsonl" if p.suffix.lower() == ".jsonl" else "csv"
    # The one prediction reader (official CSV or predictions.jsonl): bad files fail in one line naming it.
    rows = [(_line_of(r.where), r) for r in read_predictions(p, format=fmt)]
    report = SubmissionReport(path=p, format=fmt, rows=len(rows))
    cat = catalog()
    bench = _Benchmark(tasks_dir)
    for rowno, (line, row) in enumerate(rows, 1):
        problem = functools.partial(RowProblem, line, row=rowno)
        tid = row.task_id
        if tid not in cat:
            report.problems.append(problem(tid or None, f"unknown task id {tid!r}"))
            continue
        if bench.task(tid) is None:
            report.problems.append(problem(tid, f"no benchmark test file for {tid} in {tasks_dir}"))
            continue
        if row.failed:  # a failed item is missing, never an (empty) answer
            if not allow_partial:
                report.problems.append(problem(tid, f"failed item ({_short(row.error)}): not an answer; retry it "
                                               "(medsbench eval --resume) or submit with --allow-partial"))
            continue
        if row.input is None or row.reference is None:
            report.problems.append(problem(tid, "input and GT must be given (empty cell or missing field)"))
            continue
        inst, why = bench.match(tid, row)
        if inst is None:
            report.problems.append(problem(tid, why or "no match"))
            continue
        bench.claimed[(tid, inst.id)] = f"row {rowno} (line {line})"
        entry = cat[tid]
        report.predictions.append(PredictionRow(
            task_id=tid, id=inst.id, category=entry.category, language=entry.language, input=inst.input,
            output=row.output if row.output is not None else "", reference=inst.target, references=list(inst.output),
        ))
    bench.coverage(report, allow_partial)
    report.flags = suspicion_flags(report.predictions)
    return report


def _query_of(text: str) -> str | None:
    """The item input inside a full rendered prompt (some CSV writers put the prompt in ``input``):
    the text of the paper's last query block ``Input:\n...\nOutput:``."""
    text = text.replace("\r\n", "\n")
    head, sep, tail = text.rpartition("Input:\n")
    if not sep:
        return None
    body, sep, _ = tail.rpartition("\nOutput:")
    return _norm(body) if sep else None


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


def _short(text: Any, n: int = 60) -> str:
    s = str(text).replace("\n", " ")
    return repr(s if len(s) <= n else s[:n] + "…")


ScoreFolder = Callable[[Path, Path], None]


def default_scorer(predictions: Path, results: Path) -> None:
    """Score with the scoring engine into ``results`` (a :class:`medsbench.records.results.Results`)."""

    Results.model_validate(score_predictions(predictions)).save(results)


@dataclass(frozen=True)
class SubmissionOptions:
    """What a submitter gives besides the file."""

    model_name: str
    description: str | None = None
    tasks_dir: str | os.PathLike | None = None  # default: WORKSPACE/tasks
    allow_partial: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES


def submission_run_name(model_name: str) -> str:
    """The run folder (and run) name of a model's submission."""
    return SUBMISSION_PREFIX + unique_slug(model_name)


def submit(
    path: str | os.PathLike,
    *,
    workspace: str | os.PathLike,
    store: Any,
    scorer: ScoreFolder | None = None,
    **fields: Any,
) -> tuple[str, SubmissionReport]:
    """Validate, write ``runs/submission-<slug>/`` (the stage records), score, and add to the store as
    pending. ``fields`` are those of :class:`SubmissionOptions`."""

    sub = SubmissionOptions(**fields)
    model_name = check_model_name(sub.model_name)
    if sub.description is not None and len(sub.description) > DESCRIPTION_MAX:
        raise MedsbenchError(f"description is longer than {DESCRIPTION_MAX} characters")
    workspace = Path(workspace)
    tasks_dir = Path(sub.tasks_dir) if sub.tasks_dir else Workspace(workspace).tasks
    if not tasks_dir.is_dir():
        raise MedsbenchError("no benchmark task files to check against (medsbench data convert ...)", where=str(tasks_dir))
    report = validate_submission(path, tasks_dir, max_bytes=sub.max_bytes, allow_partial=sub.allow_partial)
    if not report.ok:
        raise SubmissionRejected(report)
    if not report.predictions:
        raise MedsbenchError("submission has no rows", where=str(report.path))
    run_name = submission_run_name(model_name)
    folder = RunFolder(Workspace(workspace).run_dir(run_name))
    with folder.lock():
        _write_submission_run(folder, report, tasks_dir, model_name, sub.description, sha256_file(report.path))
        (scorer or default_scorer)(folder.predictions_path, folder.results_path)
        add_run(store, folder.path, model_name=model_name, kind="submission", status="pending",
                description=sub.description, run_name=run_name, allow_partial=sub.allow_partial)
    return run_name, report


def _write_submission_run(folder: RunFolder, report: SubmissionReport, tasks_dir: Path, model_name: str,
                          description: str | None, file_sha256: str) -> None:
    """predictions.jsonl and manifest.json of a submission, through the run folder's one writer."""

    cat = catalog()
    files = find_task_files(tasks_dir)
    tasks = {}
    for tid, (got, total) in sorted(report.coverage.items()):
        test = files[tid]["test"]
        definition = read_meta(test).get("Definition")
        definition = definition[0] if isinstance(definition, list) and definition else definition
        tasks[tid] = ManifestTask(
            category=cat[tid].category, language=cat[tid].language,
            definition_sha256=sha256_text(str(definition or "")), n_total=total, n=got,
            items_sha256=items_digest(r.id for r in report.predictions if r.task_id == tid),
            files={"test": TaskFile(path=str(test.resolve()), sha256=sha256_file(test))},
        )
    folder.write_predictions(report.predictions)
    folder.save_manifest(RunManifest(
        submission=Submission(model_name=model_name, description=description, file=report.path.name,
                              sha256=file_sha256, format=report.format, flags=[f.as_dict() for f in report.flags]),
        backend={"kind": "submission", "submitted_file": report.path.name, "submitted_sha256": file_sha256,
                 "format": report.format},
        tasks=tasks,
        prompt_template_sha256="unknown (outputs were submitted)",
        finished=now(),
        status="finished",
        counts={"items": len(report.predictions), "failed": 0, "written": len(report.predictions)},
    ))
