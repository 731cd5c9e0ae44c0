"""Sharded export of chat records: Parquet (always) and JSONL (on request).

Shards are ``data/train-00000-of-0000N.parquet`` with a fixed schema, fixed row
groups and no timestamps, so the same records give byte-identical files (for
the same pyarrow version). Files are written into a temp folder and moved into
place when every shard is complete; a crash never leaves a half mixture.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import orjson

from medsbench.errors import require
from medsbench.ins.config import ExportConfig

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
        self.tmp = self.out / ".data.tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
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
            self.tmp / name, self.schema, compression=comp, use_dictionary=["task_id", "category", "source", "language"]
        )
        self.files.append({"path": f"data/{name}", "rows": 0})
        if self.cfg.jsonl:
            self._jsonl = open(self.tmp / shard_name(self.shard, self.n_shards, "jsonl"), "wb")

    def _close_current(self) -> None:
        self._flush()
        if self._pq_writer is not None:
            self._pq_writer.close()
            self._pq_writer = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def add(self, system: str, user: str, assistant: str, *, id: str, task_id: str, category: str, source: str, language: str, shots: int) -> None:
        if self.rows_in_shard >= self.cfg.shard_rows:
            self._open_next()
        for c, v in zip(COLUMNS, (id, task_id, category, source, language, shots)):
            self.buf[c].append(v)
        self.sys.append(system)
        self.user.append(user)
        self.asst.append(assistant)
        if self._jsonl is not None:
            msgs = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ]
            row = {"messages": msgs, "id": id, "task_id": task_id, "category": category, "source": source, "language": language, "shots": shots}
            self._jsonl.write(orjson.dumps(row) + b"\n")
        self.rows_in_shard += 1
        self.files[-1]["rows"] += 1
        self.written += 1
        if len(self.sys) >= self.cfg.row_group_rows:
            self._flush()

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
        """Finish the last shard and move ``data/`` (and ``jsonl/``) into place."""
        self._close_current()
        # Shards the allocation promised but no row reached (cannot happen when total_rows is exact).
        while self.shard + 1 < self.n_shards:
            self._open_next()
        self._close_current()
        data, jsonl = self.out / "data", self.out / "jsonl"
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(jsonl, ignore_errors=True)
        if self.cfg.jsonl:
            jsonl.mkdir(parents=True)
            for p in sorted(self.tmp.glob("*.jsonl")):
                os.replace(p, jsonl / p.name)
        os.replace(self.tmp, data)
        return self.files

    def abort(self) -> None:
        for w in (self._pq_writer, self._jsonl):
            try:
                if w is not None:
                    w.close()
            except Exception:  # noqa: BLE001 - best effort on the error path
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
