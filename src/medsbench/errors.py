"""User-facing errors.

Anything a user can feed in (files, flags, model specs) that is wrong raises
:class:`MedsbenchError` with one line naming the file, line or field. The CLI
prints that line and exits 1; library callers can catch it.
"""

from __future__ import annotations

import importlib

from pydantic import ValidationError


class MedsbenchError(Exception):
    """A problem with user input, reported as one clear line (no traceback)."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class MissingExtraError(MedsbenchError):
    """An optional dependency is needed for this feature but not installed."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the '{package}' package: pip install 'medsbench[{extra}]'"
        )


def require(module: str, extra: str, feature: str):
    """Import an optional module lazily, or raise a helpful MissingExtraError."""

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module.split(".")[0], extra, feature) from exc


def first_error(exc: ValidationError) -> str:
    """One line from a pydantic error: ``field.path: message`` (and how many more there are)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(record)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {err.get('msg', 'invalid')}{more}"
