"""``PredictionRow``: one line of ``predictions.jsonl``, or one row of the official submission CSV.

The one reader (:func:`read_predictions`) and the writers (:func:`write_predictions`,
:func:`write_official_csv`) of prediction files. The official CSV has the columns
``task_id,input,GT,output`` (``input`` = the full prompt, as the official ``eval.py`` writes it).

A failed item (the backend gave up, the prompt could not be sent) has ``error`` set and
``output`` None: it is missing from the scores, never a zero. A missing cell (JSON null, an
empty CSV cell, which pandas and the official scripts read as NaN) is None.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from medsbench.errors import MedsbenchError
from medsbench.fileio import atomic_write, dumps, iter_jsonl
from medsbench.ids import is_item_id, is_name
from medsbench.records.base import SCHEMA_VERSION, Record, validate_record
from medsbench.records.loglik import OptionScores

CSV_COLUMNS = ("task_id", "input", "GT", "output")
csv.field_size_limit(1 << 30)  # long model outputs and inputs are legitimate


def _text(value: Any) -> Any:
    """Numbers and booleans become text (an all-numeric CSV/JSON column is still text)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return None if value != value else str(value)  # NaN is a missing cell
    return value


Text = Annotated[str | None, BeforeValidator(_text)]


class PredictionRow(Record):
    """One evaluated item: what was asked, what came back, the gold answer(s)."""

    schema_version: int = SCHEMA_VERSION
    task_id: str
    id: Text = None
    category: str | None = None
    language: str | None = None
    input: Text = None
    output: Text = None
    reference: Text = None
    references: list[Annotated[str, BeforeValidator(_text)]] = Field(default_factory=list)
    prompt: str | None = None
    demo_ids: list[str] = Field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float | None = None
    truncated: bool = False
    hit_cap: bool | None = None  # generation stopped at the token limit
    error: str | None = None  # set when the item failed: it is then missing from the scores
    loglik: OptionScores | None = None  # --scoring loglik: every option's log-likelihood (output = the chosen one)
    where: str | None = Field(default=None, exclude=True)  # file:line it was read from (never written)

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        data = dict(data)
        if "GT" in data:  # the official CSV column name
            gt = data.pop("GT")
            data.setdefault("reference", gt)
        tid = data.get("task_id")
        if not isinstance(tid, str) or not tid.strip():
            raise ValueError("missing 'task_id'")
        data["task_id"] = tid.strip()  # a documented deviation: the official scripts compare ids exactly
        if not is_name(data["task_id"]):  # task ids become file names and page anchors downstream
            raise ValueError(f"task_id {data['task_id'][:60]!r} is not a valid task id (letters, digits, '.', '_', '-')")
        item_id = _text(data.get("id"))
        if item_id is not None and not is_item_id(item_id):
            raise ValueError(f"id {str(item_id)[:60]!r} is not a valid instance id (printable, 1-512 characters)")
        if "output" not in data:
            raise ValueError("missing 'output'")
        refs = data.get("references")
        if data.get("reference") is None and isinstance(refs, list) and refs:
            data["reference"] = refs[0]
        if "reference" not in data and not refs:
            raise ValueError("missing 'reference' (gold answer)")
        if refs is None:
            ref = _text(data.get("reference"))
            data["references"] = [ref] if ref is not None else []
        return data

    @property
    def failed(self) -> bool:
        return self.error is not None


def row_from(obj: Any, where: str) -> PredictionRow:
    """Validate one prediction object; errors name ``where`` (file:line) in one line."""
    row = validate_record(PredictionRow, obj, where, "prediction row")
    row.where = where
    return row


def check_unique(rows: Iterable[PredictionRow], where: str) -> None:
    """Each (task id, instance id) at most once: a duplicated item would be counted twice, so it is an
    error naming the first duplicate (rows without an id, e.g. official CSV rows, are not checked)."""
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if row.id is None:
            continue
        key = (row.task_id, row.id)
        if key in seen:
            raise MedsbenchError(f"duplicated item: {row.task_id} id {row.id!r} appears more than once "
                                 "(each item must be scored once)", where=row.where or where)
        seen.add(key)


def read_predictions(path: str | os.PathLike, format: str = "auto") -> list[PredictionRow]:
    """Prediction rows from a ``predictions.jsonl`` or an official CSV file (``format``: auto|csv|jsonl)."""
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
    rows = _read_csv(path) if kind == "csv" else [row_from(obj, f"{path}:{n}") for n, obj in iter_jsonl(path)]
    if not rows:
        raise MedsbenchError("no predictions in file", where=str(path))
    return rows


def encode_prediction(row: PredictionRow) -> bytes:
    """One ``predictions.jsonl`` line (with its newline): the runner's crash journal appends these."""
    data = row.model_dump(mode="json")
    if data.get("loglik") is None:  # generative rows keep their shape
        data.pop("loglik", None)
    return dumps(data) + b"\n"


def write_predictions(path: str | os.PathLike, rows: Iterable[PredictionRow]) -> int:
    """Write ``predictions.jsonl`` atomically; returns the number of rows."""
    n = 0
    with atomic_write(path, "wb") as fh:
        for row in rows:
            fh.write(encode_prediction(row))
            n += 1
    return n


def write_official_csv(path: str | os.PathLike, rows: Iterable[PredictionRow]) -> None:
    """The official submission format ``task_id,input,GT,output`` (input = the prompt sent, as officially).

    A failed item keeps its row with an empty output cell (NaN for the official scripts).
    """
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        prompt = r.prompt if r.prompt is not None else (r.input or "")
        writer.writerow([r.task_id, prompt, r.reference or "", r.output or ""])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


def _detect(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MedsbenchError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8", where=f"{path}:{line}"
        ) from None


def _read_csv(path: Path) -> list[PredictionRow]:
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
    rows: list[PredictionRow] = []
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
            row_from(
                {
                    "task_id": cell["task_id"],
                    "input": cell["input"],
                    # an empty cell is NaN for pandas (and for the official scripts)
                    "reference": cell["GT"] if cell["GT"] != "" else None,
                    "output": cell["output"] if cell["output"] != "" else None,
                },
                where,
            )
        )
    return rows
