"""Settings files (YAML, TOML or JSON) read into typed pydantic models: the one loader, with one-line errors.

Tune configs, MedS-Ins mixture configs, judge rubrics, price tables and the task catalog are all read here:
:func:`read_settings` gives the mapping (``file:line`` of a syntax error), :func:`load_settings` also
validates it into a model (the first failing field named).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from medsbench.errors import MedsbenchError, first_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is new in Python 3.11; tomli is the same parser as a package
    import tomli as tomllib

M = TypeVar("M", bound=BaseModel)


class Readable(Protocol):
    """A file path or a packaged resource (``importlib.resources`` Traversable)."""

    @property
    def name(self) -> str: ...

    def read_text(self, encoding: str = ...) -> str: ...


def read_settings(path: Path | Readable, what: str = "settings file") -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON (``.json``) file, or one line
    naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MedsbenchError(f"{what} not found", where=str(path)) from None
    if path.name.endswith(".toml"):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MedsbenchError(f"invalid TOML in {what}: {exc}", where=str(path)) from None
    elif path.name.endswith((".yaml", ".yml")):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise MedsbenchError(f"invalid YAML in {what}: {getattr(exc, 'problem', None) or exc}", where=where) from None
    elif path.name.endswith(".json"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise MedsbenchError(f"invalid JSON in {what}: {exc}", where=str(path)) from None
    else:
        raise MedsbenchError(f"{what} must be .yaml, .yml, .toml or .json", where=str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MedsbenchError(f"{what} must be a mapping of settings", where=str(path))
    return data


def validate_settings(cls: type[M], data: Mapping[str, Any], where: str, what: str = "settings") -> M:
    """``cls.model_validate(data)``, or one line naming the first bad field and ``where``."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise MedsbenchError(f"bad {what}: {first_error(exc)}", where=where) from None


def load_settings(cls: type[M], path: Path | Readable, what: str = "settings file",
                  overrides: Mapping[str, Any] | None = None) -> M:
    """A settings file validated into ``cls``; ``overrides`` (not None) win over the file's values."""
    data = read_settings(path, what)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_settings(cls, data, str(path), what)
