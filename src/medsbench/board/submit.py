"""Submissions: validate predictions someone sent against our benchmark files, score, store as pending.

Accepted formats: the official CSV (``task_id,input,GT,output``) and our ``predictions.jsonl``.
Every row must match one benchmark instance by (task_id, input) - ``input`` may also be the full
rendered prompt, whose last ``Input:``/``Output:`` query block is then matched - its GT must equal our reference
(a tampered reference is rejected), no item may appear twice, and each submitted task must be
covered completely (unless ``allow_partial``). File-level problems (unsafe name, size, columns,
encoding) raise :class:`MedsbenchError`; row-level problems are collected with their line numbers so a
rejection says exactly which rows and why.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError

DEFAULT_MAX_BYTES = 100 << 20  # the whole MedS-Bench test set with long outputs is well under this
CSV_COLUMNS = ("task_id", "input", "GT", "output")
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_LISTED = 50


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
    predictions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self, limit: int = MAX_LISTED) -> str:
        lines = [f"{self.path.name}: {self.rows} rows ({self.format}), {len(self.problems)} problem(s)"]
        for tid, (got, total) in sorted(self.coverage.items()):
            lines.append(f"  coverage {tid}: {got}/{total}")
        for p in self.problems[:limit]:
            lines.append(f"  {p}")
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
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


def _read_rows(path: Path, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, {task_id, input, GT, output, id?}) for every row of either format."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MedsbenchError("not UTF-8 text", where=f"{path}:{line}") from None
    if not text.strip():
        raise MedsbenchError("empty file", where=str(path))
    rows: list[tuple[int, dict[str, Any]]] = []
    if fmt == "jsonl":
        import orjson

        for lineno, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{lineno}") from None
            if not isinstance(obj, dict):
                raise MedsbenchError("each line must be a JSON object", where=f"{path}:{lineno}")
            missing = [k for k in ("task_id", "input", "output") if k not in obj]
            gt = obj.get("reference")
            if gt is None and isinstance(obj.get("references"), list) and obj["references"]:
                gt = obj["references"][0]
            if gt is None:
                missing.append("reference")
            if missing:
                raise MedsbenchError(f"missing field(s) {', '.join(missing)} (predictions.jsonl contract)", where=f"{path}:{lineno}")
            rows.append((lineno, {"task_id": obj["task_id"], "input": obj["input"], "GT": gt,
                                  "output": obj.get("output"), "id": obj.get("id")}))
        return rows
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise MedsbenchError(f"broken CSV: {exc}", where=f"{path}:1") from None
    cols = [h.strip() for h in header]
    skip_index = bool(cols) and cols[0] in ("", "Unnamed: 0")  # a pandas index column
    if skip_index:
        cols = cols[1:]
    if sorted(cols) != sorted(CSV_COLUMNS) or len(cols) != len(CSV_COLUMNS):
        raise MedsbenchError(
            f"wrong columns {','.join(cols) or '(none)'}: the official CSV has exactly {','.join(CSV_COLUMNS)}",
            where=f"{path}:1",
        )
    start = reader.line_num + 1
    try:
        for rec in reader:
            line = start
            start = reader.line_num + 1
            if not rec or all(not c.strip() for c in rec):
                continue
            if skip_index:
                rec = rec[1:]
            if len(rec) != len(cols):
                raise MedsbenchError(f"row has {len(rec)} cells, expected {len(cols)}", where=f"{path}:{line}")
            row = dict(zip(cols, rec))
            if row["output"].strip().lower() == "nan":  # pandas writes missing outputs as NaN
                row["output"] = ""
            rows.append((line, row))
    except csv.Error as exc:
        raise MedsbenchError(f"broken CSV: {exc}", where=f"{path}:{reader.line_num}") from None
    return rows


def validate_submission(
    path: str | os.PathLike,
    tasks_dir: str | os.PathLike,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_partial: bool = False,
    inbox: str | os.PathLike | None = None,
) -> SubmissionReport:
    """Check a submission against the benchmark (test split) task files in ``tasks_dir``."""
    from medsbench.tasks.catalog import catalog
    from medsbench.tasks.workspace import find_task_files
    from medsbench.tasks.format import iter_instances

    p = check_submission_path(path, inbox)
    size = p.stat().st_size
    if size > max_bytes:
        raise MedsbenchError(f"file is {size} bytes, over the {max_bytes}-byte submission limit", where=str(p))
    fmt = "jsonl" if p.suffix.lower() == ".jsonl" else "csv"
    rows = _read_rows(p, fmt)
    report = SubmissionReport(path=p, format=fmt, rows=len(rows))
    cat = catalog()
    files = find_task_files(tasks_dir)
    index: dict[str, dict[str, list[Any]]] = {}
    claimed: dict[tuple[str, str], str] = {}  # (task, instance id) -> "row R (line L)" that claimed it

    def task_index(tid: str) -> dict[str, list[Any]] | None:
        if tid not in index:
            split = files.get(tid, {}).get("test")
            if split is None:
                return None
            by_input: dict[str, list[Any]] = {}
            for inst in iter_instances(split):
                by_input.setdefault(_norm(inst.input), []).append(inst)
            index[tid] = by_input
        return index[tid]

    for rowno, (line, row) in enumerate(rows, 1):
        problem = functools.partial(RowProblem, line, row=rowno)
        tid = str(row["task_id"]).strip()
        if tid not in cat:
            report.problems.append(problem(tid or None, f"unknown task id {tid!r}"))
            continue
        idx = task_index(tid)
        if idx is None:
            report.problems.append(problem(tid, f"no benchmark test file for {tid} in {tasks_dir}"))
            continue
        if not isinstance(row["input"], str) or not isinstance(row["GT"], str):
            report.problems.append(problem(tid, "input and GT must be text"))
            continue
        candidates = idx.get(_norm(row["input"])) or idx.get(_query_of(row["input"]) or "\x00")
        if not candidates:
            report.problems.append(problem(tid, f"input matches no benchmark item of {tid}: {_short(row['input'])}"))
            continue
        gt = _norm(row["GT"])
        same_gt = [inst for inst in candidates if gt in {_norm(o) for o in inst.output}]
        if not same_gt:
            report.problems.append(problem(
                tid, f"GT differs from the benchmark reference (tampered or wrong file): got {_short(row['GT'])}, "
                f"expected {_short(candidates[0].target)}"))
            continue
        free = [inst for inst in same_gt if (tid, inst.id) not in claimed]
        if row.get("id") is not None:  # jsonl rows name their item; prefer it
            free = [inst for inst in free if inst.id == str(row["id"])] or free
        if not free:
            first = claimed[(tid, same_gt[0].id)]
            report.problems.append(problem(tid, f"duplicate row: this item was already given in {first}"))
            continue
        inst = free[0]
        claimed[(tid, inst.id)] = f"row {rowno} (line {line})"
        output = row.get("output")
        entry = cat[tid]
        report.predictions.append({
            "task_id": tid, "id": inst.id, "category": entry.category, "language": entry.language,
            "input": inst.input, "output": "" if output is None else str(output), "reference": inst.target,
            "references": list(inst.output), "prompt": None, "demo_ids": [], "prompt_tokens": None,
            "output_tokens": None, "seconds": None, "truncated": False, "error": None,
        })
    for tid, idx in sorted(index.items()):
        total = sum(len(v) for v in idx.values())
        got = sum(1 for (t, _) in claimed if t == tid)
        report.coverage[tid] = (got, total)
        if got < total and not allow_partial:
            missing = sorted({inst.id for v in idx.values() for inst in v if (tid, inst.id) not in claimed}, key=_id_order)
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            report.problems.append(RowProblem(
                None, tid, f"partial coverage: {got} of {total} items (missing ids: {shown}); submit every item of a task"))
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


Scorer = Callable[[Path, Path], None]


def default_scorer(predictions: Path, results: Path) -> None:
    """Score with the scoring engine (issue B) into ``results``."""
    from medsbench.metrics import score_predictions, write_results

    write_results(score_predictions(predictions), results)


def submit(
    path: str | os.PathLike,
    *,
    model_name: str,
    workspace: str | os.PathLike,
    store: Any,
    description: str | None = None,
    tasks_dir: str | os.PathLike | None = None,
    allow_partial: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    scorer: Scorer | None = None,
) -> tuple[str, SubmissionReport]:
    """Validate, write ``runs/submission-<slug>/``, score, and add to the store as pending."""
    from medsbench.board.store import check_display_name, slugify
    from medsbench.fileio import sha256_file, write_json, write_jsonl

    model_name = check_display_name(model_name)
    if description is not None and len(description) > 2000:
        raise MedsbenchError("description is longer than 2000 characters")
    workspace = Path(workspace)
    tasks_dir = Path(tasks_dir) if tasks_dir else workspace / "tasks"
    if not tasks_dir.is_dir():
        raise MedsbenchError("no benchmark task files to check against (medsbench data convert ...)", where=str(tasks_dir))
    report = validate_submission(path, tasks_dir, max_bytes=max_bytes, allow_partial=allow_partial)
    if not report.ok:
        raise SubmissionRejected(report)
    if not report.predictions:
        raise MedsbenchError("submission has no rows", where=str(report.path))
    run_name = f"submission-{slugify(model_name)}"
    run_dir = workspace / "runs" / run_name
    preds = run_dir / "predictions.jsonl"
    write_jsonl(preds, report.predictions)
    write_json(run_dir / "manifest.json", {
        "kind": "submission",
        "model_name": model_name,
        "description": description,
        "submitted_file": report.path.name,
        "submitted_sha256": sha256_file(report.path),
        "format": report.format,
        "coverage": {k: list(v) for k, v in sorted(report.coverage.items())},
    })
    (scorer or default_scorer)(preds, run_dir / "results.json")
    store.add_run(run_dir, model_name=model_name, kind="submission", status="pending",
                  description=description, run_name=run_name)
    return run_name, report
