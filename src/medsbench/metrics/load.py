"""Read predictions: our predictions.jsonl or the official submission CSV (task_id,input,GT,output).

Rows come back normalised as dicts with ``task_id, id, input, reference, references,
output, category, language, where``; ``output`` / ``reference`` are None when the cell is
missing (JSON null, an empty CSV cell). Bad files raise one-line :class:`MedsbenchError`\\ s
naming the file and line.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import iter_jsonl

CSV_COLUMNS = ("task_id", "input", "GT", "output")
csv.field_size_limit(1 << 30)  # long model outputs and inputs are legitimate


def _detect(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def load_predictions(path: str | os.PathLike, format: str = "auto") -> list[dict[str, Any]]:
    """Normalised prediction rows from a predictions.jsonl or official CSV file."""
    path = Path(path)
    if not path.exists():
        raise MedsbenchError("file not found", where=str(path))
    if path.is_dir():
        raise MedsbenchError("is a directory, expected a predictions file", where=str(path))
    if format not in ("auto", "csv", "jsonl"):
        raise MedsbenchError(f"unknown format '{format}' (auto, csv or jsonl)")
    if path.stat().st_size == 0:
        raise MedsbenchError("empty file, no predictions", where=str(path))
    kind = _detect(path) if format == "auto" else format
    rows = _load_csv(path) if kind == "csv" else _load_jsonl(path)
    if not rows:
        raise MedsbenchError("no predictions in file", where=str(path))
    return rows


def _text(value: Any, field: str, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise MedsbenchError(f"'{field}' must be a string, got {type(value).__name__}", where=where)


def normalize_row(obj: dict[str, Any], where: str, index: int) -> dict[str, Any]:
    """One prediction row (our JSONL fields, or CSV-style GT) in the normalised shape."""
    if not isinstance(obj, dict):
        raise MedsbenchError(f"expected a JSON object, got {type(obj).__name__}", where=where)
    task_id = obj.get("task_id")
    if not isinstance(task_id, str) or not task_id.strip():
        raise MedsbenchError("missing 'task_id'", where=where)
    if "output" not in obj:
        raise MedsbenchError("missing 'output'", where=where)
    refs = obj.get("references")
    reference = obj.get("reference", obj.get("GT"))
    if reference is None and isinstance(refs, list) and refs:
        reference = refs[0]
    if reference is None and "reference" not in obj and "GT" not in obj and not refs:
        raise MedsbenchError("missing 'reference' (gold answer)", where=where)
    reference = _text(reference, "reference", where)
    return {
        "task_id": task_id.strip(),
        "id": str(obj["id"]) if obj.get("id") is not None else None,
        "input": _text(obj.get("input"), "input", where),
        "reference": reference,
        "references": list(refs) if isinstance(refs, list) else ([reference] if reference is not None else []),
        "output": _text(obj.get("output"), "output", where),
        "category": obj.get("category"),
        "language": obj.get("language"),
        "error": obj.get("error"),
        "where": where,
        "index": index,
    }


def normalize_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [normalize_row(r, f"row {i + 1}", i) for i, r in enumerate(rows)]


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [normalize_row(obj, f"{path}:{lineno}", i) for i, (lineno, obj) in enumerate(iter_jsonl(path))]


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MedsbenchError(f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8", where=f"{path}:{line}") from None


def _load_csv(path: Path) -> list[dict[str, Any]]:
    text = _decode(path)
    if not text.strip():
        raise MedsbenchError("empty file, no predictions", where=str(path))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise MedsbenchError(f"broken CSV: {exc}", where=f"{path}:{reader.line_num}") from None
    names = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        raise MedsbenchError(
            f"CSV header must have columns {','.join(CSV_COLUMNS)}; missing {', '.join(missing)} (got {','.join(names)})",
            where=f"{path}:1",
        )
    pos = {c: names.index(c) for c in CSV_COLUMNS}
    rows: list[dict[str, Any]] = []
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise MedsbenchError(f"broken CSV quoting: {exc}", where=f"{path}:{start}") from None
        where = f"{path}:{start}"
        start = reader.line_num + 1
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) != len(names):
            raise MedsbenchError(f"expected {len(names)} fields, got {len(record)}", where=where)
        cell = {c: record[i] for c, i in pos.items()}
        rows.append(
            normalize_row(
                {
                    "task_id": cell["task_id"],
                    "input": cell["input"],
                    # an empty cell is NaN for pandas (and for the official scripts)
                    "reference": cell["GT"] if cell["GT"] != "" else None,
                    "output": cell["output"] if cell["output"] != "" else None,
                },
                where,
                len(rows),
            )
        )
    return rows
