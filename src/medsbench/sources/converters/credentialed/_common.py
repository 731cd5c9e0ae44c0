"""CSV reading with clear column errors (splits are written by ``medsbench.sources.registry.write_splits``)."""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from medsbench.errors import MedsbenchError
import zipfile

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
