"""Sharded export of chat records: Parquet (always) and JSONL (on request).

Shards are ``data/train-00000-of-0000N.parquet`` with a fixed schema, fixed row
groups and no timestamps, so the same records give byte-identical files (for
the same pyarrow version). Files are written into a temp folder and moved into
place when every shard is complete; a crash never leaves a half mixture.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import orjson

from medsbench.errors import require
from medsbench.ins.config import ExportConfig
from medsbench.ins.emit import Records
import ctypes
from medsbench.errors import MedsbenchError
from medsbench.fileio import exclusive_lock
from medsbench.fileio import current_umask

COLUMNS = ("id", "task_id", "category", "source", "language", "shots")


def schema():
    pa = require("pyarrow", "ins", "mixture export")
    msg = pa.struct([pa.field("role", pa.string(), nullable=False), pa.field("content", pa.string(), nullable=False)])
    return pa.schema(
        [
            pa.field("messages", pa.list_(pa.field("item", msg, nullable=False)), nullable=False),
            pa.field("id", pa.string(), nullable=False),
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("category", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("language", pa.string(), nullable=False),
            pa.field("shots", pa.int32(), nullable=False),
        ]
    )


def shard_name(i: int, n: int, ext: str) -> str:
    return f"train-{i:05d}-of-{n:05d}.{ext}"


class ShardWriter:
    """Append records; shards roll over every ``shard_rows`` rows (the count is known up front)."""

    def __init__(self, out_dir: str | os.PathLike, total_rows: int, cfg: ExportConfig) -> None:
        self.pa = require("pyarrow", "ins", "mixture export")
        self.pq = require("pyarrow.parquet", "ins", "mixture export")
        self.cfg = cfg
        self.out = Path(out_dir)
        self.total = total_rows
        self.n_shards = max(1, math.ceil(total_rows / cfg.shard_rows))
        self.data = self.out / "data"
        self.data.mkdir(parents=True)
        if cfg.jsonl:
            (self.out / "jsonl").mkdir()
        self.schema = schema()
        self.shard = -1
        self.rows_in_shard = 0
        self.written = 0
        self.files: list[dict] = []
        self._pq_writer = None
        self._jsonl: BinaryIO | None = None
        self._reset()
        self._open_next()

    def _reset(self) -> None:
        self.buf: dict[str, list] = {c: [] for c in COLUMNS}
        self.sys: list[str] = []
        self.user: list[str] = []
        self.asst: list[str] = []

    def _open_next(self) -> None:
        self._close_current()
        self.shard += 1
        self.rows_in_shard = 0
        name = shard_name(self.shard, self.n_shards, "parquet")
        comp = None if self.cfg.compression == "none" else self.cfg.compression
        self._pq_writer = self.pq.ParquetWriter(
            self.data / name, self.schema, compression=comp, use_dictionary=["task_id", "category", "source", "language"]
        )
        self.files.append({"path": f"data/{name}", "rows": 0})
        if self.cfg.jsonl:
            self._jsonl = open(self.out / "jsonl" / shard_name(self.shard, self.n_shards, "jsonl"), "wb")

    def _close_current(self) -> None:
        self._flush()
        if self._pq_writer is not None:
            self._pq_writer.close()
            self._pq_writer = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def add_records(self, rec: Records) -> None:
        """Append a chunk's records; shards roll over at ``shard_rows``, row groups at ``row_group_rows``."""
        i, n = 0, len(rec)
        labels = rec.labels
        while i < n:
            if self.rows_in_shard >= self.cfg.shard_rows:
                self._open_next()
            room = min(self.cfg.shard_rows - self.rows_in_shard, self.cfg.row_group_rows - len(self.sys), n - i)
            j = i + room
            self.sys.extend(rec.system[i:j])
            self.user.extend(rec.user[i:j])
            self.asst.extend(rec.assistant[i:j])
            for c, v in (("task_id", rec.task_id), ("category", labels.category), ("source", labels.source), ("language", labels.language)):
                self.buf[c].extend([v] * room)
            self.buf["id"].extend(rec.id[i:j])
            self.buf["shots"].extend(rec.shots[i:j])
            if self._jsonl is not None:
                self._write_jsonl(rec, i, j)
            self.rows_in_shard += room
            self.files[-1]["rows"] += room
            self.written += room
            if len(self.sys) >= self.cfg.row_group_rows:
                self._flush()
            i = j

    def _write_jsonl(self, rec: Records, i: int, j: int) -> None:
        assert self._jsonl is not None
        labels = rec.labels
        for k in range(i, j):
            msgs = [
                {"role": "system", "content": rec.system[k]},
                {"role": "user", "content": rec.user[k]},
                {"role": "assistant", "content": rec.assistant[k]},
            ]
            row = {"messages": msgs, "id": rec.id[k], "task_id": rec.task_id, "category": labels.category,
                   "source": labels.source, "language": labels.language, "shots": rec.shots[k]}
            self._jsonl.write(orjson.dumps(row) + b"\n")

    def _flush(self) -> None:
        n = len(self.sys)
        if not n or self._pq_writer is None:
            return
        pa = self.pa
        contents = [None] * (3 * n)
        contents[0::3], contents[1::3], contents[2::3] = self.sys, self.user, self.asst
        roles = pa.array(["system", "user", "assistant"] * n, type=pa.string())
        struct = pa.StructArray.from_arrays(
            [roles, pa.array(contents, type=pa.string())], fields=list(self.schema.field("messages").type.value_type)
        )
        offsets = pa.array(range(0, 3 * n + 1, 3), type=pa.int32())
        messages = pa.ListArray.from_arrays(offsets, struct, type=self.schema.field("messages").type)
        cols = [messages] + [
            pa.array(self.buf[c], type=pa.int32() if c == "shots" else pa.string()) for c in COLUMNS
        ]
        batch = pa.RecordBatch.from_arrays(cols, schema=self.schema)
        self._pq_writer.write_batch(batch, row_group_size=self.cfg.row_group_rows)
        self._reset()

    def close(self) -> list[dict]:
        """Finish the last shard; returns ``[{"path", "rows"}]`` per shard."""
        self._close_current()
        # Shards the allocation promised but no row reached (cannot happen when total_rows is exact).
        while self.shard + 1 < self.n_shards:
            self._open_next()
        self._close_current()
        return self.files

    def abort(self) -> None:
        for w in (self._pq_writer, self._jsonl):
            try:
                if w is not None:
                    w.close()
            except Exception:  # noqa: BLE001 - best effort on the error path
                pass


# --- the staging folder and the swap -----------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def stage_folders(out: Path) -> list[Path]:
    """Staging folders of builds of ``out`` (``.NAME.build-*`` beside it)."""
    return sorted(out.parent.glob(f".{out.name}.build-*")) if out.parent.is_dir() else []


def clean_stale(out: Path) -> list[Path]:
    """Remove the staging folders of ``out`` whose build is gone (their lock is free); returns them."""

    removed = []
    for stage in stage_folders(out):
        try:
            with exclusive_lock(stage, "mixture staging folder"):
                shutil.rmtree(stage)
        except MedsbenchError:  # a live build holds it
            continue
        except FileNotFoundError:
            pass
        removed.append(stage)
    if (out / "stats.json").is_file():  # a complete mixture is in place: older copies are not needed
        for old in out.parent.glob(f".{out.name}.old-*"):
            shutil.rmtree(old, ignore_errors=True)
    return removed


def new_stage(out: Path) -> Path:
    """A fresh staging folder beside ``out`` (same filesystem, so the swap is a rename)."""

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-{os.getpid()}-", dir=out.parent))
    os.chmod(stage, 0o777 & ~current_umask())  # the mode of a plain mkdir, not mkdtemp's 0700
    return stage


def swap_in(stage: Path, out: Path) -> None:
    """Put the complete mixture in ``stage`` at ``out`` in one step and remove what was there.

    On Linux the two folders are exchanged atomically (``renameat2``), so at every moment
    ``out`` is either the previous mixture or the new one. Elsewhere ``out`` is first renamed
    to ``.NAME.old-PID`` (a crash between the two renames leaves the previous mixture there, whole).
    """
    if not out.exists():
        os.rename(stage, out)
        return
    if _exchange(stage, out):
        shutil.rmtree(stage)  # now the previous mixture
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.rename(out, old)
    os.rename(stage, out)
    shutil.rmtree(old)
