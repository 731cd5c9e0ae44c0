"""Corpora a run's items are checked against, read as streams of texts.

One ``--against`` argument is any of:

* a MedS-Ins mixture (``ins build`` output: a folder with ``data/*.parquet``, a folder of Parquet
  shards, or one ``.parquet`` file), read in record batches with pyarrow;
* a ``datasets`` ``save_to_disk`` folder (``dataset_info.json`` or ``dataset_dict.json`` inside);
* a task file (official JSON, or JSONL with its header line) or a folder of them and of the files below;
* a JSONL file of any records;
* a text file (``.txt``, ``.md``): each non-empty line is one record.

The texts checked for a record: chat ``messages`` (each message's content on its own, as ``ins build``
checks a bare input rather than its rendered prompt), or ``input`` and its ``output`` (one string or a
list) and their join with newlines (so an item checked with its gold answer, ``input\\ngold``, can
equal a record exactly), or ``text``, or else every top-level string field. Every file is recorded
with its sha256.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import sha256_file
from medsbench.records.contamination import CorpusFile, CorpusSource
from medsbench.tasks.format import META_HEADER, iter_instances

TASK_SUFFIXES = (".json", ".jsonl")
TEXT_SUFFIXES = (".txt", ".md")
BATCH_ROWS = 2048


def record_texts(record: Any) -> list[str]:
    """The texts checked for one record (see the module docstring); non-string values are skipped."""
    if isinstance(record, str):
        return [record] if record.strip() else []
    if not isinstance(record, dict):
        return []
    joined = False
    messages = record.get("messages")
    if isinstance(messages, list):
        parts = [m.get("content") for m in messages if isinstance(m, dict)]
    elif "input" in record:
        out = record.get("output")
        parts, joined = [record.get("input"), *(out if isinstance(out, list) else [out])], True
    elif "text" in record:
        parts = [record.get("text")]
    else:
        parts = list(record.values())
    texts = [p for p in parts if isinstance(p, str) and p.strip()]
    return texts + ["\n".join(texts)] if joined and len(texts) > 1 else texts


@dataclass
class Corpus:
    """One ``--against`` argument: what it is and its files (each read once, in order)."""

    path: Path
    kind: str
    files: list[Path]
    counts: dict[Path, list[int]] = field(default_factory=dict)  # file -> [records, texts]

    def describe(self) -> CorpusSource:
        """The record of this corpus: its files with sha256 and what was read of each."""
        return CorpusSource(path=str(self.path), kind=self.kind,  # type: ignore[arg-type]
                            files=[CorpusFile(path=str(f), sha256=sha256_file(f), records=self.counts.get(f, [0, 0])[0],
                                              texts=self.counts.get(f, [0, 0])[1]) for f in self.files])

    def records(self) -> Iterator[tuple[Path, int, list[str]]]:
        """(file, 1-based record number, texts) of every record, file by file."""
        for f in self.files:
            counts = self.counts[f] = [0, 0]  # read again (a second pass): counted once
            for number, texts in enumerate(_read(self.kind, f), 1):
                counts[0] += 1
                counts[1] += len(texts)
                yield f, number, texts


def open_corpus(path: str | os.PathLike[str]) -> Corpus:
    """What ``path`` is (see the module docstring); an unreadable or empty one is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise MedsbenchError("corpus not found", where=str(p))
    if p.is_file():
        return Corpus(p, _file_kind(p), [p])
    if (p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
        files = sorted(f for f in p.rglob("*.arrow") if f.is_file())
        if not files:
            raise MedsbenchError("a datasets folder without .arrow files", where=str(p))
        return Corpus(p, "hf_dataset", files)
    shards = sorted((p / "data").glob("*.parquet")) or sorted(p.glob("*.parquet"))
    if shards:
        return Corpus(p, "mixture", shards)
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                   and f.suffix.lower() in (*TASK_SUFFIXES, *TEXT_SUFFIXES))
    if not files:
        raise MedsbenchError("no corpus files here (parquet shards, a datasets folder, task files, .jsonl, .txt)",
                             where=str(p))
    return Corpus(p, "folder", files)


def _file_kind(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        return "mixture"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix == ".json":
        return "task"
    if suffix == ".jsonl":
        return "task" if _has_task_header(p) else "jsonl"
    raise MedsbenchError(f"unknown corpus file type '{suffix}' (.parquet, .json, .jsonl, .txt, .md)", where=str(p))


def _has_task_header(p: Path) -> bool:
    with open(p, "rb") as fh:
        first = fh.readline()
    try:
        head = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(head, dict) and isinstance(head.get(META_HEADER), dict)


def _read(kind: str, f: Path) -> Iterator[list[str]]:
    """The texts of every record of one file."""
    if kind == "folder":
        kind = _file_kind(f)
    if kind == "mixture":
        yield from _parquet(f)
    elif kind == "hf_dataset":
        yield from _arrow(f)
    elif kind == "task":
        for inst in iter_instances(f):
            yield record_texts({"input": inst.input, "output": inst.output})
    elif kind == "jsonl":
        yield from _jsonl(f)
    else:
        yield from _lines(f)


def _jsonl(f: Path) -> Iterator[list[str]]:
    with open(f, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                yield []  # records are numbered by line
                continue
            try:
                yield record_texts(orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{f}:{lineno}") from None


def _lines(f: Path) -> Iterator[list[str]]:
    with open(f, encoding="utf-8", errors="strict") as fh:
        try:
            for line in fh:  # records are numbered by line; a blank line has no text
                yield [line.rstrip("\n")] if line.strip() else []
        except UnicodeDecodeError as exc:
            raise MedsbenchError(f"not UTF-8 text ({exc.reason})", where=str(f)) from None


def _batches_of(table_batches: Any) -> Iterator[list[str]]:
    for batch in table_batches:
        for row in batch.to_pylist():
            yield record_texts(row)


def _parquet(f: Path) -> Iterator[list[str]]:
    pq = require("pyarrow.parquet", "ins", "reading Parquet corpora")
    try:
        reader = pq.ParquetFile(f)
    except Exception as exc:  # pyarrow raises several types for non-parquet bytes
        raise MedsbenchError(f"not a readable parquet file: {str(exc).splitlines()[0]}", where=str(f)) from None
    yield from _batches_of(reader.iter_batches(batch_size=BATCH_ROWS))


def _arrow(f: Path) -> Iterator[list[str]]:
    """One ``.arrow`` file of a ``save_to_disk`` folder (an Arrow IPC stream, as datasets writes them)."""
    pa = require("pyarrow", "ins", "reading datasets folders")
    try:
        with pa.memory_map(str(f)) as source:
            reader = pa.ipc.open_stream(source)
            yield from _batches_of(reader)
    except pa.ArrowInvalid as exc:
        raise MedsbenchError(f"not an Arrow stream of a datasets folder: {exc}", where=str(f)) from None
