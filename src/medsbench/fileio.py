"""Small file helpers shared by every stage: atomic writes, JSON/JSONL, hashing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from medsbench.errors import MedsbenchError

_UMASK: int | None = None
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read once: from /proc/self/status (no side effect), else by set-and-restore."""
    global _UMASK
    if _UMASK is None:
        with _UMASK_LOCK:
            if _UMASK is None:
                mask = None
                with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
                    for line in fh:
                        if line.startswith("Umask:"):
                            mask = int(line.split()[1], 8)
                            break
                if mask is None:  # not Linux: set-and-restore, under the lock
                    mask = os.umask(0o022)
                    os.umask(mask)
                _UMASK = mask
    return _UMASK


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: ``0o666 & ~umask`` (0644 under 022)."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temp file beside ``path`` and rename it into place on success.

    A crash mid-write leaves the old file (or nothing), never a half-written one. The result has
    the mode a plain ``open`` would give it (:func:`file_mode`), not the temp file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else "") as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), file_mode())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps(obj: Any, *, indent: bool = False) -> bytes:
    opts = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(obj, option=opts)


def write_json(path: str | os.PathLike, obj: Any, *, indent: bool = True) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(dumps(obj, indent=indent))
        fh.write(b"\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MedsbenchError("file not found", where=str(path)) from None
    except IsADirectoryError:
        raise MedsbenchError("is a directory, expected a JSON file", where=str(path)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data[: exc.pos].count(b"\n") + 1
        raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{line}") from None


def iter_jsonl(path: str | os.PathLike, *, objects: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield (line_number, value) for each non-blank line; bad JSON names the line.

    With ``objects=True`` every line must hold a JSON object.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise MedsbenchError("file not found", where=str(path)) from None
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{lineno}") from None
            if objects and not isinstance(value, dict):
                raise MedsbenchError(f"expected a JSON object per line, got {type(value).__name__}", where=f"{path}:{lineno}")
            yield lineno, value


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    n = 0
    with atomic_write(path, "wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS))
            fh.write(b"\n")
            n += 1
    return n


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_key(text: str, *, size: int = 8, normalise: bool = False) -> bytes:
    """A short binary digest of ``text`` for set membership (duplicate and overlap checks); ``normalise``
    folds runs of white space first. blake2b: fast, and as collision-free as the size allows."""
    if normalise:
        text = " ".join(text.split())
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).digest()


def stable_seed(*parts: Any) -> int:
    """A 64-bit seed derived from (global seed, task id, instance id, ...).

    Reproducible across processes and Python versions (unlike ``hash()``), so a
    choice never depends on batch size, shard count or order.
    """
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def os_error_reason(exc: OSError) -> str:
    """``reason (ENAME)``, e.g. ``Read-only file system (EROFS)``."""
    name = errno.errorcode.get(exc.errno or 0)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} ({name})" if name else reason


def os_error_line(exc: OSError) -> str:
    """``PATH: reason (ENAME)`` for an OSError, e.g. ``/proc/foo: No such file or directory (ENOENT)``."""
    if exc.filename is None:
        return os_error_reason(exc)
    return f"{os.fsdecode(exc.filename)}: {os_error_reason(exc)}"


def ensure_writable(folder: str | os.PathLike, what: str = "folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written and removed there.

    Raises :class:`MedsbenchError` naming the path and the reason (EACCES, EROFS, ENOSPC, ENOTDIR, ...),
    so an unwritable place is one clear line before any compute is spent.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".medsbench-probe.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        if exc.filename is None or str(exc.filename).startswith(str(folder / ".medsbench-probe.")):
            exc.filename = str(folder)
        raise MedsbenchError(f"{what} is not writable: {os_error_reason(exc)}", where=os.fsdecode(exc.filename)) from None
    return folder


LOCK_NAME = ".medsbench.lock"


@contextlib.contextmanager
def exclusive_lock(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (one writer per run folder, store or output folder).

    A second process that asks for the same lock fails at once with one line naming the holder's
    pid. The lock is an OS file lock (``fcntl.flock``) on ``folder/.medsbench.lock``: it is released
    when the holder exits, even on ``kill -9``, so a stale lock file never blocks anyone.
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise MedsbenchError(
                f"{what} is in use by another medsbench process (pid {holder}); wait for it or stop it",
                where=str(folder),
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield path
    finally:
        fh.close()  # closing the descriptor releases the flock
