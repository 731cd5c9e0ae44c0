"""An ordered map over worker processes, for the pure per-chunk stages of the MedS-Ins builder.

``Workers(n, init, args).map(fn, jobs)`` yields ``fn(job)`` in job order, with at
most ``2 * n`` jobs in flight, so a streamed input never piles up in memory.
``fn`` and ``init`` are module-level functions; ``init(*args)`` runs once in
every worker (the state it sets, e.g. the decontamination index, is then
read by ``fn``). With ``n == 1`` everything runs inline in this process, so
one and N workers run the same code on the same inputs in the same order and
write the same bytes.

Workers are started with the ``forkserver`` method (a clean process, never a
fork of a process that holds pyarrow's or BLAS's threads). An error raised in
a worker is raised here: a :class:`medsbench.errors.MedsbenchError` as the
same one line, anything else with its traceback text.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from medsbench.errors import MedsbenchError
import traceback
import multiprocessing


def default_workers() -> int:
    """The CPUs this process may use (``os.sched_getaffinity``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Failure:
    """An error raised in a worker, carried back as text (exceptions do not always pickle)."""

    def __init__(self, exc: BaseException) -> None:

        self.user = isinstance(exc, MedsbenchError)
        self.text = str(exc) if self.user else "".join(traceback.format_exception(exc))

    def raise_(self) -> None:
        if self.user:
            raise MedsbenchError(self.text)
        raise RuntimeError(f"a MedS-Ins build worker failed:\n{self.text}")


def _call(fn: Callable[[Any], Any], job: Any) -> Any:
    try:
        return fn(job)
    except Exception as exc:  # noqa: BLE001 - re-raised in the parent by Workers
        return _Failure(exc)


def _unwrap(value: Any) -> Any:
    if isinstance(value, _Failure):
        value.raise_()
    return value


class Workers:
    """A process pool (or inline execution for ``n == 1``) with an ordered, bounded ``map``."""

    def __init__(self, n: int, init: Callable[..., None] | None = None, args: tuple = (), preload: Sequence[str] = ()) -> None:
        if n < 1:
            raise MedsbenchError(f"workers must be >= 1, got {n}")
        self.n = n
        self._pool: ProcessPoolExecutor | None = None
        if n == 1:
            if init is not None:
                init(*args)
        else:

            ctx = multiprocessing.get_context("forkserver")
            if preload:  # imported once in the fork server, so every worker starts with them loaded
                ctx.set_forkserver_preload(list(preload))
            self._pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=init, initargs=args)

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        """``fn(job)`` for every job, in order; at most ``2 * n`` jobs are submitted ahead."""
        if self._pool is None:
            for job in jobs:
                yield fn(job)
            return
        pending: deque[Future] = deque()
        try:
            for job in jobs:
                pending.append(self._pool.submit(_call, fn, job))
                while len(pending) >= 2 * self.n:
                    yield _unwrap(pending.popleft().result())
            while pending:
                yield _unwrap(pending.popleft().result())
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
