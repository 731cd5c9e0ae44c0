"""Registry of raw-source converters: raw public releases -> task files.

A converter is a function ``fn(raw_dir: Path, out_dir: Path, **options) -> list[Path]``
registered under a name with :func:`register_source`. It reads the official
files of one source family and writes one task file per (task, split) with
:func:`write_splits`, the one split writer: a task is described once
(:class:`TaskSpec`: id, name, definition, source, licence -> file names and
metadata), and every split goes through the one split rule (:class:`DistinctInputs`:
no input twice in a task, test first, so train never repeats a test input).
Everything a converter writes goes through these helpers, so metadata, file
names and split rules are uniform.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from medsbench.errors import MedsbenchError
from medsbench.fileio import stable_seed, text_key
from medsbench.sources.definitions import OfficialDefinitions, choose_definition, using_definitions
from medsbench.tasks.catalog import INS_CATEGORY_OF, LANGUAGE_NAMES, CatalogEntry, catalog
from medsbench.tasks.format import Instance, write_task

Converter = Callable[..., list[Path]]


@dataclass(frozen=True)
class SourceSpec:
    name: str
    fn: Converter
    description: str
    raw_folder: str | None  # folder name under ../shared/data/raw, if any
    tasks: tuple[str, ...] = ()  # catalog task ids it builds (empty for generic converters)
    generic: bool = False  # works on any corpus of its family (needs --task-id/--name options)
    options: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, SourceSpec] = {}


def register_source(
    name: str,
    *,
    description: str,
    raw_folder: str | None = None,
    tasks: Iterable[str] = (),
    generic: bool = False,
) -> Callable[[Converter], Converter]:
    """Decorator: register ``fn`` as the converter called ``name``."""

    def deco(fn: Converter) -> Converter:
        if name in _REGISTRY:
            raise ValueError(f"source '{name}' registered twice")
        _REGISTRY[name] = SourceSpec(name, fn, description, raw_folder, tuple(tasks), generic)
        return fn

    return deco


def sources() -> dict[str, SourceSpec]:
    """All registered converters (the built-in ones register when :mod:`medsbench.sources` is imported)."""
    return dict(_REGISTRY)


def convert(
    name: str,
    raw_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    /,
    *,
    definitions: OfficialDefinitions | None = None,
    **options: Any,
) -> list[Path]:
    """Run the converter ``name`` on ``raw_dir``; returns the task files written.

    ``definitions`` (from :func:`medsbench.sources.definitions.load_official_definitions`):
    write the official definition into every file whose task id has one.
    """
    specs = sources()
    if name not in specs:
        raise MedsbenchError(f"unknown source '{name}' (known: {', '.join(sorted(specs))})")
    raw = Path(raw_dir)
    if not raw.is_dir():
        raise MedsbenchError("raw data folder not found", where=str(raw))
    if not any(raw.iterdir()):
        raise MedsbenchError("raw data folder is empty", where=str(raw))
    with using_definitions(definitions):
        return specs[name].fn(raw, Path(out_dir), **options)


@dataclass
class ConvertReport:
    """What ``convert_all`` did: files per source, and sources skipped with the reason."""

    written: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [p for paths in self.written.values() for p in paths]


def convert_all(
    raw_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    on_source: Callable[[str, list[Path] | None, str | None], None] | None = None,
    *,
    definitions: OfficialDefinitions | None = None,
) -> ConvertReport:
    """Run every dataset converter whose raw folder exists under ``raw_root``.

    Sources whose folder is absent, or present but incomplete (e.g. DDXPlus
    definitions without the patient files), are skipped with their one-line
    reason instead of stopping the others. ``on_source(name, files, skip_reason)``
    is called after each source for progress reporting.
    """
    raw = Path(raw_root)
    if not raw.is_dir():
        raise MedsbenchError("raw data folder not found", where=str(raw))
    report = ConvertReport()
    for spec in sorted(sources().values(), key=lambda s: s.name):
        if spec.generic or spec.raw_folder is None:
            continue
        folder = raw / spec.raw_folder
        if not folder.is_dir():
            report.skipped[spec.name] = f"{folder} not present"
        else:
            try:
                report.written[spec.name] = convert(spec.name, folder, out_dir, definitions=definitions)
            except MedsbenchError as exc:
                report.skipped[spec.name] = str(exc)
        if on_source:
            on_source(spec.name, report.written.get(spec.name), report.skipped.get(spec.name))
    if not report.written:
        raise MedsbenchError("no converter found its dataset folder here: expected folders like medqa_usmle/, hoc/", where=str(raw))
    return report


def require_file(raw_dir: Path, *relative: str) -> Path:
    """The first existing file among ``relative`` paths, or a one-line error saying what is missing."""
    for rel in relative:
        path = raw_dir / rel
        if path.exists():
            return path
    raise MedsbenchError(
        f"expected {' or '.join(relative)} here: is this the right dataset folder?", where=str(raw_dir)
    )


def hash_split(item_id: str, salt: str, test_fraction: float = 0.1) -> str:
    """Deterministic split by a hash of the item id: ``test`` for ~test_fraction of items."""
    bucket = stable_seed("split", salt, item_id) % 10_000
    return "test" if bucket < int(test_fraction * 10_000) else "train"


HASH_SPLIT_NOTE = "no official split: 9:1 train:test by blake2b hash of the item id (medsbench.sources.hash_split)"


@dataclass(frozen=True)
class TaskSpec:
    """One converter task: where its files go and how they are described (catalog task or train-only one).

    ``category`` is the MedS-Ins category for tasks outside the catalog (catalog tasks take
    their category's); ``file_stem`` names the files of a task outside the catalog (default
    ``<task_id>_<slug>``; catalog tasks use the catalog's file names).
    """

    task_id: str
    slug: str
    definition: str
    source: str
    url: str
    license: str
    entry: CatalogEntry | None = None
    category: str | None = None
    language: str | None = None
    file_stem: str | None = None

    @classmethod
    def bench(cls, task_id: str, **kw: Any) -> TaskSpec:
        e = catalog()[task_id]
        return cls(task_id=task_id, slug=e.slug, entry=e, **kw)

    def file_name(self, split: str) -> str:
        if self.entry is not None:
            return self.entry.file_name(split)
        return f"{self.file_stem or f'{self.task_id}_{self.slug}'}.{split}.json"


def task_meta(spec: TaskSpec, split: str, split_method: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Metadata of one task file in the official key order, plus our ``medsbench`` block.

    Inside :func:`medsbench.sources.definitions.using_definitions` the official definition
    of the task id replaces ``spec.definition`` (the block records which one was written).
    """
    e = spec.entry
    lang_code = spec.language or (e.language if e else "en")
    lang = LANGUAGE_NAMES.get(lang_code, lang_code)
    cats = [spec.category] if spec.category else ([INS_CATEGORY_OF[e.category]] if e else [])
    definition, definition_info = choose_definition(spec.task_id, spec.definition)
    ours: dict[str, Any] = {
        "task_id": spec.task_id,
        "slug": spec.slug,
        "split": split,
        "split_method": split_method,
        "license": spec.license,
        "bench_category": e.category if e else None,
        **definition_info,
    }
    if extra:
        ours.update(extra)
    return {
        "Contributors": ["medsbench converters"],
        "Source": [spec.source],
        "URL": [spec.url],
        "Categories": cats,
        "Reasoning": [],
        "Definition": [definition],
        "Input_language": [lang],
        "Output_language": [lang],
        "Instruction_language": ["English"],
        "Domains": ["Medicine"],
        "Positive Examples": [],
        "Negative Examples": [],
        "medsbench": ours,
    }


T = TypeVar("T")


def _input_of(item: Any) -> str:
    return item.input


class DistinctInputs:
    """The split rule of every converter: within one task an input is kept once, in the order the
    splits are given (test first, so train never repeats a test input); empty inputs are dropped.

    Inputs are compared exactly, by a 16-byte blake2b digest (a streamed split keeps only
    digests in memory). ``dropped[split]`` and ``empty[split]`` count what was left out.
    """

    def __init__(self) -> None:
        self._seen: set[bytes] = set()
        self.dropped: Counter[str] = Counter()
        self.empty: Counter[str] = Counter()

    def keep(self, split: str, items: Iterable[T], text: Callable[[T], str] = _input_of) -> Iterator[T]:
        """The items of ``split`` the rule keeps, lazily, in order."""
        for item in items:
            value = text(item)
            if not value:
                self.empty[split] += 1
                continue
            key = text_key(value, size=16)
            if key in self._seen:
                self.dropped[split] += 1
                continue
            self._seen.add(key)
            yield item

    def lists(self, splits: Mapping[str, Iterable[T]], text: Callable[[T], str] = _input_of) -> dict[str, list[T]]:
        """Every split at once (in the mapping's order), as lists."""
        return {name: list(self.keep(name, items, text)) for name, items in splits.items()}


def write_splits(
    out_dir: str | os.PathLike,
    spec: TaskSpec,
    splits: Mapping[str, Iterable[Instance]],
    *,
    split_method: str,
    extra: Mapping[str, Any] | None = None,
    split_extra: Mapping[str, Mapping[str, Any]] | None = None,
    require: Collection[str] = (),
) -> list[Path]:
    """The one split writer: each split, in the mapping's order (test first), through
    :class:`DistinctInputs` into ``spec.file_name(split)``, streamed.

    A split left without instances writes no file (an error for the splits in ``require``).
    ``split_extra`` adds per-split keys to the ``medsbench`` block (counts known before writing).
    """
    rule = DistinctInputs()
    written: list[Path] = []
    for split, items in splits.items():
        info = {**(extra or {}), **((split_extra or {}).get(split) or {})}
        path = Path(out_dir) / spec.file_name(split)
        if write_task(path, task_meta(spec, split, split_method, info or None), rule.keep(split, items)):
            written.append(path)
            continue
        path.unlink(missing_ok=True)
        if split in require:
            raise MedsbenchError(f"no {split} instances for {spec.task_id}: is this the right dataset folder?")
    return written


def entry(task_id: str) -> CatalogEntry:
    return catalog()[task_id]
