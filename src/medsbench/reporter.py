"""``Reporter``: how library code tells the user what it is doing, without knowing how it is shown.

Library code (runs, judge, ins, tune, the board) never imports rich or prints: it calls a
:class:`Reporter`. The CLI passes one that renders to the terminal (``medsbench.commands.render``:
colours, one live progress bar); library users get :class:`LogReporter` (the ``logging`` module) by
default, or pass their own (two methods).

Levels: ``info`` (events), ``detail`` (less important, e.g. skipped files), ``warning``, ``error``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Literal, Protocol, runtime_checkable

Level = Literal["info", "detail", "warning", "error"]
_LOG_LEVEL = {"info": logging.INFO, "detail": logging.DEBUG, "warning": logging.WARNING, "error": logging.ERROR}


@runtime_checkable
class Bar(Protocol):
    """A live progress display (one per run)."""

    def update(self, *, done: int, total: int, description: str, rate: str, eta: str) -> None: ...


@runtime_checkable
class Reporter(Protocol):
    def message(self, text: str, level: Level = "info") -> None:
        """One line for the user (never wrapped or interpreted as markup)."""

    def bar(self, total: int) -> contextlib.AbstractContextManager[Bar | None]:
        """A live progress bar for ``total`` steps, or None where there is no terminal to draw it on
        (then progress goes to :meth:`message` as heartbeat lines)."""


class LogReporter:
    """Messages to the ``logging`` module (logger ``medsbench``); no live bar."""

    def __init__(self, logger: logging.Logger | None = None):
        self.log = logger or logging.getLogger("medsbench")

    def message(self, text: str, level: Level = "info") -> None:
        self.log.log(_LOG_LEVEL[level], "%s", text)

    @contextlib.contextmanager
    def bar(self, total: int) -> Iterator[Bar | None]:
        yield None


class ListReporter:
    """Keeps every message (for tests and for callers that show them later)."""

    def __init__(self) -> None:
        self.lines: list[tuple[Level, str]] = []

    def message(self, text: str, level: Level = "info") -> None:
        self.lines.append((level, text))

    @contextlib.contextmanager
    def bar(self, total: int) -> Iterator[Bar | None]:
        yield None

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)
