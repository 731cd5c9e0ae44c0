"""Progress of a whole run: items done/total, measured items/s, ETA.

:class:`RunProgress` keeps the counts; it drives either a live bar (a
:class:`medsbench.reporter.Bar`, drawn by the CLI in a terminal) or a one-line heartbeat every
``interval`` seconds (a log), so a run is never silent for minutes. The clock is injectable (tests
step it by hand).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from medsbench.reporter import Bar

if TYPE_CHECKING:  # typing.Self is new in Python 3.11
    from typing_extensions import Self

HEARTBEAT_SECONDS = 30.0


def fmt_duration(seconds: float | None) -> str:
    """``75`` -> ``1m15s``, ``3725`` -> ``1h02m``; None -> ``?``."""
    if seconds is None:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class RunProgress:
    """Counts of one run. ``total`` items, ``to_generate`` of them need the model (the rest are cached).

    The rate is measured on model-generated items only (cache hits and unsendable items are
    instant), so the ETA is ``(to_generate - generated) / rate``.
    """

    def __init__(
        self,
        total: int,
        to_generate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = HEARTBEAT_SECONDS,
        emit: Callable[[str], None] | None = None,
        bar: Bar | None = None,
        label: str = "eval",
        unit: str = "items",
    ):
        self.label = label  # the line's first word(s), e.g. "judge gpt-4o"
        self.unit = unit  # what is counted: items (eval), requests (judge)
        self.total = total
        self.to_generate = to_generate
        self.done = 0
        self.generated = 0
        self.failed = 0
        self.task = ""
        self.clock = clock
        self.interval = interval
        self.emit = emit
        self.bar = bar
        self._gen_start: float | None = None
        self._last_beat = clock()
        self._lock = threading.Lock()

    # -- counting ---------------------------------------------------------
    def start_task(self, label: str) -> None:
        self.task = label
        self._refresh()

    def generating(self) -> None:
        """The model is about to be called (starts the rate clock once)."""
        if self._gen_start is None:
            self._gen_start = self.clock()

    def advance(self, n: int = 1, *, generated: bool = False, failed: bool = False) -> None:
        self.done += n
        if generated:
            self.generated += n
        if failed:
            self.failed += n
        self._refresh()
        self.maybe_beat()

    @property
    def rate(self) -> float | None:
        """Model-generated items per second since the model was first called."""
        if self._gen_start is None or self.generated == 0:
            return None
        elapsed = self.clock() - self._gen_start
        return self.generated / elapsed if elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        left = max(self.to_generate - self.generated, 0)
        if left == 0:
            return 0.0
        rate = self.rate
        return left / rate if rate else None

    def line(self) -> str:
        pct = 100 * self.done / self.total if self.total else 100.0
        rate = self.rate
        parts = [f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%)"]
        parts.append(f"{rate:.2f} {self.unit}/s" if rate else "rate ?")
        parts.append(f"ETA {fmt_duration(self.eta)}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.task:
            parts.append(f"now {self.task}")
        return ", ".join(parts)

    # -- rendering --------------------------------------------------------
    def maybe_beat(self) -> bool:
        """Emit the heartbeat line if ``interval`` seconds passed since the last one."""
        if self.emit is None:
            return False
        with self._lock:
            now = self.clock()
            if now - self._last_beat < self.interval:
                return False
            self._last_beat = now
        self.emit(self.line())
        return True

    def say(self, text: str) -> None:
        """An event line in log mode (task started/finished); the bar shows it as its description."""
        if self.emit is not None:
            with self._lock:
                self._last_beat = self.clock()
            self.emit(text)

    def _refresh(self) -> None:
        if self.bar is None:
            return
        rate = self.rate
        self.bar.update(
            done=self.done,
            total=self.total,
            description=self.task,
            rate=f"{rate:.2f} it/s" if rate else "",
            eta=f"ETA {fmt_duration(self.eta)}",
        )


class Heartbeat:
    """A daemon thread that calls ``progress.maybe_beat()`` every ``tick`` seconds (a long batch is not silence)."""

    def __init__(self, progress: RunProgress, tick: float = 1.0):
        self.progress = progress
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="medsbench-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            self.progress.maybe_beat()

    def __enter__(self) -> Self:
        if self.progress.emit is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
