"""Registry of raw-source converters: raw public releases -> task files.

A converter is a function ``fn(raw_dir: Path, out_dir: Path, **options) -> list[Path]``
registered under a name with :func:`register_source`. It reads the official
files of one source family and writes one task file per (task, split) with
:func:`write_split`. Everything a converter writes goes through the same
helpers, so metadata, file names and split rules are uniform.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import stable_seed
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
    """All registered converters (importing the built-in ones on first use)."""
    import medsbench.sources.converters  # noqa: F401  (registers built-ins)

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


def task_meta(
    entry: CatalogEntry | None,
    *,
    split: str,
    definition: str,
    source: str,
    url: str,
    split_method: str,
    license: str,
    contributors: str = "medsbench converters",
    categories: list[str] | None = None,
    language: str | None = None,
    domains: list[str] | None = None,
    task_id: str | None = None,
    slug: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metadata of one task file in the official key order, plus our ``medsbench`` block.

    Inside :func:`medsbench.sources.definitions.using_definitions` the official definition
    of the task id replaces ``definition`` (the block records which one was written).
    """
    lang_code = language or (entry.language if entry else "en")
    lang = LANGUAGE_NAMES.get(lang_code, lang_code)
    cats = categories or ([INS_CATEGORY_OF[entry.category]] if entry else [])
    tid = task_id or (entry.id if entry else None)
    definition, definition_info = choose_definition(tid, definition)
    ours: dict[str, Any] = {
        "task_id": tid,
        "slug": slug or (entry.slug if entry else None),
        "split": split,
        "split_method": split_method,
        "license": license,
        "bench_category": entry.category if entry else None,
        **definition_info,
    }
    if extra:
        ours.update(extra)
    return {
        "Contributors": [contributors],
        "Source": [source],
        "URL": [url],
        "Categories": cats,
        "Reasoning": [],
        "Definition": [definition],
        "Input_language": [lang],
        "Output_language": [lang],
        "Instruction_language": ["English"],
        "Domains": domains or ["Medicine"],
        "Positive Examples": [],
        "Negative Examples": [],
        "medsbench": ours,
    }


def write_split(out_dir: Path, file_name: str, meta: dict[str, Any], instances: Iterable[Instance | dict]) -> Path:
    """Write one task file atomically into ``out_dir``; returns its path."""
    path = Path(out_dir) / file_name
    n = write_task(path, meta, instances)
    if n == 0:
        path.unlink(missing_ok=True)
        raise MedsbenchError(f"no instances for {file_name}: is this the right dataset folder?")
    return path


def entry(task_id: str) -> CatalogEntry:
    return catalog()[task_id]
