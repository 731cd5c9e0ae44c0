"""The common base of the stage records (pydantic, ``schema_version``, one-line errors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from medsbench.errors import MedsbenchError, first_error
from medsbench.fileio import read_json, write_json

SCHEMA_VERSION = 1

R = TypeVar("R", bound="Record")


class Record(BaseModel):
    """A typed record: unknown fields are refused, so a foreign or hand-edited file fails loudly.

    A record whose file shape changed sets ``SCHEMA`` to its current version and reads older
    files through :meth:`migrate` (one reader for every version it accepts).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)
    SCHEMA: ClassVar[int] = SCHEMA_VERSION

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """``data`` of an older ``version`` in the current shape (records without older shapes refuse)."""
        raise ValueError(f"schema_version {version!r} is not read by this medsbench (it reads {cls.SCHEMA})")


def validate_record(cls: type[R], data: Any, where: str, what: str) -> R:
    """``cls.model_validate(data)`` with a one-line :class:`MedsbenchError` naming ``where``."""
    if isinstance(data, dict):
        version = data.get("schema_version")
        if version is not None and version != cls.SCHEMA:
            if not isinstance(version, int) or version > cls.SCHEMA:
                raise MedsbenchError(f"{what} has schema_version {version!r}, this medsbench reads {cls.SCHEMA}",
                                     where=where)
            try:
                data = cls.migrate(dict(data), version)
            except (ValueError, KeyError, TypeError) as exc:
                raise MedsbenchError(f"{what} of schema_version {version}: {exc}", where=where) from None
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
