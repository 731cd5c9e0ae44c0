"""The common base of the stage records (pydantic, ``schema_version``, one-line errors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from medsbench.errors import MedsbenchError
from medsbench.fileio import read_json, write_json

SCHEMA_VERSION = 1

R = TypeVar("R", bound="Record")


class Record(BaseModel):
    """A typed record: unknown fields are refused, so a foreign or hand-edited file fails loudly."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)


def first_error(exc: ValidationError) -> str:
    """One line from a pydantic error: ``field.path: message``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(record)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {err.get('msg', 'invalid')}{more}"


def validate_record(cls: type[R], data: Any, where: str, what: str) -> R:
    """``cls.model_validate(data)`` with a one-line :class:`MedsbenchError` naming ``where``."""
    if isinstance(data, dict):
        version = data.get("schema_version")
        if version is not None and version != SCHEMA_VERSION:
            raise MedsbenchError(
                f"{what} has schema_version {version!r}, this medsbench reads {SCHEMA_VERSION}", where=where
            )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise MedsbenchError(f"not a medsbench {what}: {first_error(exc)}", where=where) from None


def load_model(cls: type[R], path: str | os.PathLike, what: str) -> R:
    """Read one JSON record file (manifest.json, results.json)."""
    return validate_record(cls, read_json(path), str(path), what)


def save_model(record: Record, path: str | os.PathLike) -> Path:
    """Write one JSON record file atomically."""
    path = Path(path)
    write_json(path, record.model_dump(mode="json"))
    return path
