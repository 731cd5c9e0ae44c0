"""Weights fingerprints: a content hash of a model folder, so a model identity changes whenever its bytes do.

A folder's fingerprint is sha256 over ``name \\0 sha256(file)`` of every top-level file that
determines outputs: weights (``.safetensors``, ``.bin``, ``.gguf``, ``.pt``, ``.pth``), config and
tokenizer files (``.json``, ``.model``, ``.txt``, ``.jinja``, ``.tiktoken``) and remote code
(``.py``). Sub-folders (checkpoints, logs) are not part of the model. Each file's sha256 is cached
in a small SQLite file keyed by (resolved path, size, mtime_ns, ctime_ns, inode), so an unchanged
folder costs one ``stat`` per file; a model re-saved into the same folder (same names and sizes,
new bytes) has a new mtime/ctime and is hashed again.

The cache lives at ``$MEDSBENCH_FINGERPRINT_CACHE`` or ``<medsbench cache dir>/fingerprints.sqlite``
(see :func:`medsbench.models.default.cache_dir`). A Hub name that is not a local folder is resolved
offline to its snapshot in the Hugging Face cache and hashed there; without a local snapshot the
identity can only be the repo name and revision (``fingerprint_kind: "hub-revision"``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.models.default import cache_dir

log = logging.getLogger(__name__)

CACHE_ENV = "MEDSBENCH_FINGERPRINT_CACHE"
MODEL_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".gguf", ".pt", ".pth", ".json", ".model", ".txt", ".jinja", ".tiktoken", ".py"}
)
LOG_ABOVE = 1 << 30  # say so when a cold fingerprint reads more than this
CONTENT = "content"
HUB_REVISION = "hub-revision"

#: Files hashed and bytes read since import (tests check that an unchanged folder is not re-read).
STATS = {"files_hashed": 0, "bytes_hashed": 0}


@dataclass(frozen=True)
class Fingerprint:
    kind: str  # "content" (sha256 of the files) | "hub-revision" (no local files: repo name + revision)
    value: str  # the folder sha256, or "REPO@REVISION"
    folder: str | None = None  # the folder hashed (a Hub name's snapshot folder)
    files: int = 0
    bytes: int = 0


def cache_path() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()

    return cache_dir() / "fingerprints.sqlite"


class _HashCache:
    """(path, size, mtime_ns, ctime_ns, inode) -> sha256; a broken or unwritable cache only costs speed."""

    def __init__(self, path: Path):
        self.db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                " ctime_ns INTEGER, inode INTEGER, sha256 TEXT NOT NULL, hashed REAL)"
            )
        except (OSError, sqlite3.Error) as exc:
            log.warning("fingerprint cache %s unusable (%s): hashing without it", path, exc)
            self.db = None

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def get(self, path: str, st: os.stat_result) -> str | None:
        if self.db is None:
            return None
        try:
            row = self.db.execute(
                "SELECT size, mtime_ns, ctime_ns, inode, sha256 FROM files WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or tuple(row[:4]) != self._key(st):
            return None
        return str(row[4])

    def put(self, path: str, st: os.stat_result, digest: str) -> None:
        if self.db is None:
            return
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", (path, *self._key(st), digest, time.time())
            )
        except sqlite3.Error as exc:
            log.warning("fingerprint cache not updated (%s)", exc)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    digest = h.hexdigest()
    STATS["files_hashed"] += 1
    STATS["bytes_hashed"] += path.stat().st_size
    return digest


def model_files(folder: Path) -> list[Path]:
    """The top-level files of ``folder`` that are part of the model, sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def folder_fingerprint(folder: str | os.PathLike[str]) -> Fingerprint:
    """The content fingerprint of a local model folder (files re-hashed only when they changed)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MedsbenchError("model folder not found", where=str(folder))
    files = model_files(folder)
    if not files:
        raise MedsbenchError("no model files (weights, config, tokenizer) to fingerprint", where=str(folder))
    cache = _HashCache(cache_path())
    total = hashlib.sha256()
    size = 0
    try:
        entries = []
        for file in files:
            real = file.resolve()  # Hub snapshots are symlinks into blobs/
            st = real.stat()
            entries.append((file.name, real, st, cache.get(str(real), st)))
        todo = sum(st.st_size for _, _, st, digest in entries if digest is None)
        if todo > LOG_ABOVE:
            log.warning("fingerprinting %s: hashing %.1f GB once (cached afterwards)", folder, todo / 1e9)
        for name, real, st, digest in entries:
            if digest is None:
                digest = _hash_file(real)
                cache.put(str(real), st, digest)
            total.update(name.encode() + b"\0" + digest.encode() + b"\n")
            size += st.st_size
    finally:
        cache.close()
    return Fingerprint(CONTENT, total.hexdigest(), str(folder.resolve()), len(files), size)


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The local snapshot folder of a Hub model in the Hugging Face cache, or None (never goes online)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    try:
        folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), not a repo id (HFValidationError)
        return None
    path = Path(folder)
    return path if path.is_dir() and any(path.iterdir()) else None


def fingerprint(name_or_path: str, revision: str | None = None) -> Fingerprint:
    """The fingerprint of a model named by a local folder or a Hub name (see the module docstring)."""
    local = Path(name_or_path).expanduser()
    if local.is_dir() or name_or_path.startswith(("/", ".", "~")):
        return folder_fingerprint(local)  # a path that is not a folder: "model folder not found"
    snapshot = hub_snapshot(name_or_path, revision)
    if snapshot is not None:
        return folder_fingerprint(snapshot)
    return Fingerprint(HUB_REVISION, f"{name_or_path}@{revision or 'main'}")


def identity_fields(name_or_path: str, revision: str | None = None) -> dict[str, str | None]:
    """The fingerprint fields every local-weights backend puts in its identity."""
    fp = fingerprint(name_or_path, revision)
    return {"fingerprint_kind": fp.kind, "fingerprint": fp.value}
