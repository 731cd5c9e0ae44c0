"""Converters from raw public releases (and credentialed official formats) to task files."""

from medsbench.sources.registry import (
    HASH_SPLIT_NOTE,
    ConvertReport,
    DistinctInputs,
    SourceSpec,
    TaskSpec,
    convert,
    convert_all,
    hash_split,
    register_source,
    sources,
    task_meta,
    write_splits,
)

from medsbench.sources import converters  # noqa: E402,F401  (importing it registers the built-in converters)

__all__ = [
    "HASH_SPLIT_NOTE",
    "ConvertReport",
    "DistinctInputs",
    "SourceSpec",
    "TaskSpec",
    "convert",
    "convert_all",
    "hash_split",
    "register_source",
    "sources",
    "task_meta",
    "write_splits",
]
