"""CSV reading with clear column errors, and split writing with train/test de-duplication."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.sources.registry import task_meta
from medsbench.tasks.catalog import CatalogEntry
from medsbench.tasks.format import Instance, write_task

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # report texts can be long


def find_file(raw_dir: Path, *names: str) -> Path | None:
    """The first of ``names`` (also tried with .csv/.csv.gz/.gz suffixes) found in raw_dir or below."""
    for name in names:
        for cand in (name, f"{name}.csv", f"{name}.csv.gz", f"{name}.gz"):
            path = raw_dir / cand
            if path.is_file():
                return path
    for name in names:
        hits = sorted(p for p in raw_dir.rglob(f"{name}*") if p.is_file())
        if hits:
            return hits[0]
    return None


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    if path.suffix == ".zip":
        import zipfile

        zf = zipfile.ZipFile(path)
        members = [m for m in zf.namelist() if not m.endswith("/")]
        if not members:
            raise MedsbenchError("empty zip file", where=str(path))
        return io.TextIOWrapper(zf.open(members[0]), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_csv(path: Path, required: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a CSV; a missing column is a one-line error naming it."""
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames or []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise MedsbenchError(f"cannot read the CSV header: {exc}", where=f"{path}:1") from None
        check_columns(path, header, required)
        try:
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError:
            raise MedsbenchError("not UTF-8 text", where=str(path)) from None
        except csv.Error as exc:
            raise MedsbenchError(f"broken CSV: {exc}", where=f"{path}:{reader.line_num}") from None


def check_columns(path: Path, header: Iterable[str], required: Iterable[str]) -> None:
    have = list(header)
    missing = [c for c in required if c not in have]
    if missing:
        shown = ", ".join(have[:8]) + (", ..." if len(have) > 8 else "")
        raise MedsbenchError(f"missing column '{missing[0]}' (the file has: {shown or 'no header'})", where=f"{path}:1")


def is_missing(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().lower() in ("nan", "none", "null", "na")


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def write_splits(
    out_dir: Path,
    entry: CatalogEntry,
    *,
    test: Iterable[Instance],
    train: Iterable[Instance],
    definition: str,
    source: str,
    url: str,
    license: str,
    split_method: str,
    extra: dict | None = None,
) -> list[Path]:
    """Write the test then the train file; inputs are unique, and train never repeats a test input.

    ``train`` may be a generator: only 16-byte digests of inputs are kept in memory.
    """
    seen: set[bytes] = set()

    def unique(items: Iterable[Instance]) -> Iterator[Instance]:
        for inst in items:
            key = _digest(inst.input)
            if inst.input and key not in seen:
                seen.add(key)
                yield inst

    written: list[Path] = []
    for split, items in (("test", test), ("train", train)):
        meta = task_meta(entry, split=split, definition=definition, source=source, url=url,
                         split_method=split_method, license=license, extra=extra)
        path = Path(out_dir) / entry.file_name(split)
        if write_task(path, meta, unique(items)):
            written.append(path)
        else:
            path.unlink(missing_ok=True)
            if split == "test":  # a source may lack train data, never test data
                raise MedsbenchError(f"no test instances for {entry.id}: is this the right dataset folder?")
    return written
