"""The MedS / Super-NaturalInstructions task file format.

Two layouts are read and written:

* **JSON** (the official one): one object with ``Contributors, Source, URL,
  Categories, Reasoning, Definition, Input_language, Output_language,
  Instruction_language, Domains, Positive Examples, Negative Examples,
  Instances``; each instance ``{"id", "input", "output"}``.
* **JSONL** (ours, for very large tasks): the first line is
  ``{"__meta__": {...every key but Instances...}}``, then one instance per line.
  Appending instances never rewrites the file, and the header is read without
  touching the rest.

Instances are streamed (``iter_instances``) with ``ijson`` so a multi-GB file
never has to fit in memory. ``output`` may be a string or a list of strings in
the wild: it is normalised to a list and written back in its original shape,
so read -> write -> read is lossless.

Our own converters add one extra top-level key, ``"medsbench"``, with the
catalog task id, split and split method; official files without it still work
(the task id then comes from the file name, e.g. ``task57_medqa_en.json``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medsbench.errors import MedsbenchError
from medsbench.fileio import atomic_write
import ijson

REQUIRED_KEYS = (
    "Contributors",
    "Source",
    "URL",
    "Categories",
    "Reasoning",
    "Definition",
    "Input_language",
    "Output_language",
    "Instruction_language",
    "Domains",
    "Positive Examples",
    "Negative Examples",
    "Instances",
)
META_HEADER = "__meta__"
# Files up to this size are parsed whole with orjson (fast); bigger ones stream.
_WHOLE_FILE_LIMIT = 64 << 20
_TASK_ID_RE = re.compile(r"^(task\d+)")


@dataclass
class Instance:
    """One example. ``output`` is always a list; ``outputs_was_str`` remembers the shape."""

    id: str
    input: str
    output: list[str]
    output_was_str: bool = False
    id_was_int: bool = False
    id_generated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The first (canonical) reference output."""
        return self.output[0] if self.output else ""

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        if not self.id_generated:
            obj["id"] = int(self.id) if self.id_was_int else self.id
        obj["input"] = self.input
        obj["output"] = self.output[0] if self.output_was_str and len(self.output) == 1 else list(self.output)
        obj.update(self.extra)
        return obj

    @classmethod
    def from_json(cls, obj: Any, index: int, where: str = "") -> Instance:
        if not isinstance(obj, dict):
            raise MedsbenchError(f"instance must be an object, got {type(obj).__name__}", where=f"{where}:{index}")
        raw_id = obj.get("id")
        out = obj.get("output")
        outputs: Any  # raw JSON: a non-list is kept as-is and reported by validate()
        if isinstance(out, str):
            outputs, was_str = [out], True
        elif isinstance(out, list):
            outputs, was_str = out, False
        else:
            outputs, was_str = out, False  # left as-is; validate() reports the type
        extra = {k: v for k, v in obj.items() if k not in ("id", "input", "output")}
        return cls(
            id=str(index) if raw_id is None else str(raw_id),
            input=obj.get("input"),  # type: ignore[arg-type]
            output=outputs,
            output_was_str=was_str,
            id_was_int=isinstance(raw_id, int) and not isinstance(raw_id, bool),
            id_generated=raw_id is None,
            extra=extra,
        )


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


@dataclass
class Task:
    """A whole task: metadata (every top-level key but Instances) and its instances."""

    meta: dict[str, Any]
    instances: list[Instance]
    path: Path | None = None

    @property
    def definition(self) -> str:
        return _first(self.meta.get("Definition")) or ""

    @property
    def categories(self) -> list[str]:
        cats = self.meta.get("Categories") or []
        return [cats] if isinstance(cats, str) else list(cats)

    @property
    def task_id(self) -> str | None:
        return task_id_of(self.meta, self.path)

    @property
    def split(self) -> str:
        return split_of(self.meta, self.path)

    def to_json(self) -> dict[str, Any]:
        obj = dict(self.meta)
        obj["Instances"] = [inst.to_json() for inst in self.instances]
        return obj


def task_id_of(meta: dict[str, Any], path: str | os.PathLike | None = None) -> str | None:
    ours = meta.get("medsbench")
    if isinstance(ours, dict) and ours.get("task_id"):
        return str(ours["task_id"])
    if path is not None:
        m = _TASK_ID_RE.match(Path(path).name)
        if m:
            return m.group(1)
    return None


def split_of(meta: dict[str, Any], path: str | os.PathLike | None = None) -> str:
    ours = meta.get("medsbench")
    if isinstance(ours, dict) and ours.get("split"):
        return str(ours["split"])
    if path is not None:
        name = Path(path).name
        for split in ("train", "dev", "test"):
            if f".{split}." in name or name.endswith(f"_{split}.json") or name.endswith(f"_{split}.jsonl"):
                return split
    return "test"


def is_jsonl(path: str | os.PathLike) -> bool:
    return str(path).endswith(".jsonl")


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise MedsbenchError("file not found", where=str(path)) from None
    except IsADirectoryError:
        raise MedsbenchError("is a directory, expected a task file", where=str(path)) from None


def _json_error(path: Path, exc: Exception, data: bytes | None = None) -> MedsbenchError:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if data is not None and isinstance(exc, orjson.JSONDecodeError):
        line = data[: exc.pos].count(b"\n") + 1
        return MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{line}")
    return MedsbenchError(f"invalid JSON: {msg}", where=str(path))


def _load_whole(path: Path) -> dict[str, Any]:
    with _open(path) as fh:
        data = fh.read()
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _json_error(path, exc, data) from None
    if not isinstance(obj, dict):
        raise MedsbenchError(f"a task file must hold one JSON object, got {type(obj).__name__}", where=str(path))
    return obj


def _jsonl_header(path: Path, fh) -> dict[str, Any]:
    first = fh.readline()
    try:
        head = orjson.loads(first)
    except orjson.JSONDecodeError as exc:
        raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:1") from None
    if not isinstance(head, dict) or not isinstance(head.get(META_HEADER), dict):
        raise MedsbenchError(f'first line must be {{"{META_HEADER}": {{...}}}}', where=f"{path}:1")
    return head[META_HEADER]


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Every top-level key except ``Instances``, without materialising the instances."""
    path = Path(path)
    if is_jsonl(path):
        with _open(path) as fh:
            return _jsonl_header(path, fh)
    if path.stat().st_size <= _WHOLE_FILE_LIMIT:
        obj = _load_whole(path)
        obj.pop("Instances", None)
        return obj

    meta: dict[str, Any] = {}
    builder = None
    key = None
    done_events = ("end_map", "end_array", "string", "number", "boolean", "null")
    with _open(path) as fh:
        try:
            for prefix, event, value in ijson.parse(fh, use_float=True):
                if prefix == "" and event == "map_key":
                    key = value
                    # Instances are skipped event by event, never built.
                    builder = None if value == "Instances" else ijson.ObjectBuilder()
                elif builder is not None and prefix != "":
                    builder.event(event, value)
                    if prefix == key and event in done_events:
                        meta[key] = builder.value
                        builder = None
        except ijson.JSONError as exc:
            raise _json_error(path, exc) from None
    return meta


def iter_instances(path: str | os.PathLike) -> Iterator[Instance]:
    """Stream the instances of a task file in file order (memory independent of size)."""
    path = Path(path)
    where = str(path)
    if is_jsonl(path):
        with _open(path) as fh:
            _jsonl_header(path, fh)
            index = 0
            for lineno, raw in enumerate(fh, 2):
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise MedsbenchError(f"invalid JSON: {exc.msg}", where=f"{path}:{lineno}") from None
                yield Instance.from_json(obj, index, where)
                index += 1
        return
    if path.stat().st_size <= _WHOLE_FILE_LIMIT:
        obj = _load_whole(path)
        items = obj.get("Instances")
        if not isinstance(items, list):
            raise MedsbenchError("Instances: missing or not a list", where=where)
        for index, item in enumerate(items):
            yield Instance.from_json(item, index, where)
        return

    with _open(path) as fh:
        try:
            for index, item in enumerate(ijson.items(fh, "Instances.item", use_float=True)):
                yield Instance.from_json(item, index, where)
        except ijson.JSONError as exc:
            raise _json_error(path, exc) from None


def read_task(path: str | os.PathLike) -> Task:
    """Read a whole task (JSON or JSONL layout) into memory."""
    path = Path(path)
    if not is_jsonl(path) and path.stat().st_size <= _WHOLE_FILE_LIMIT:
        obj = _load_whole(path)
        items = obj.pop("Instances", None)
        if not isinstance(items, list):
            raise MedsbenchError("Instances: missing or not a list", where=str(path))
        return Task(obj, [Instance.from_json(it, i, str(path)) for i, it in enumerate(items)], path)
    return Task(read_meta(path), list(iter_instances(path)), path)


def write_task(
    path: str | os.PathLike,
    meta: dict[str, Any],
    instances: Iterable[Instance | dict[str, Any]],
) -> int:
    """Write a task atomically, streaming instances; the layout follows the extension.

    Returns the number of instances written.
    """
    path = Path(path)
    meta = {k: v for k, v in meta.items() if k != "Instances"}
    n = 0
    with atomic_write(path, "wb") as fh:
        if is_jsonl(path):
            fh.write(orjson.dumps({META_HEADER: meta}))
            fh.write(b"\n")
            for inst in instances:
                obj = inst.to_json() if isinstance(inst, Instance) else inst
                fh.write(orjson.dumps(obj))
                fh.write(b"\n")
                n += 1
            return n
        head = orjson.dumps(meta, option=orjson.OPT_INDENT_2)
        # Re-open the object to stream Instances as its last key.
        head = head[:-2] + b',\n  "Instances": [' if meta else b'{\n  "Instances": ['
        fh.write(head)
        for inst in instances:
            obj = inst.to_json() if isinstance(inst, Instance) else inst
            fh.write(b"\n    " if n == 0 else b",\n    ")
            fh.write(orjson.dumps(obj))
            n += 1
        fh.write(b"\n  ]\n}\n")
    return n


def save_task(task: Task, path: str | os.PathLike | None = None) -> int:
    target = path or task.path
    if target is None:
        raise ValueError("save_task needs a path")
    return write_task(target, task.meta, task.instances)

