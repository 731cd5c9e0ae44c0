"""How many CPUs this process may really use, for torch's intra-op (OpenMP) thread count.

``os.cpu_count()`` counts the machine's CPUs; a process may be pinned to fewer (``sched_setaffinity``,
``taskset``, a container's ``cpuset``) or get only a share of them (a cgroup CPU quota:
``docker --cpus``, Kubernetes CPU limits). More compute threads than that oversubscribe: threads
wait for each other at every parallel region (OpenMP barriers) and the quota throttles the
process. :func:`usable_cpus` takes the smallest of the affinity mask and the quota (rounded down,
at least 1): cgroup v2 ``cpu.max`` (``"max 100000"`` or ``"QUOTA PERIOD"``), or cgroup v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota ``-1``: none). :func:`torch_threads` applies an
explicit choice (the hf backend's ``threads=`` option) or that number, never more than an
``OMP_NUM_THREADS`` the user set.

Several medsbench processes on one machine (two evaluations at once, an eval beside a judge) would each
take every usable CPU and oversubscribe them together: measured on 2 cores, two evaluations at once took
2.6-3x as long as the same two in sequence. :class:`CpuShare` gives each computing process its fair
share instead: every process holds an OS lock (``fcntl.flock``) on its own file in one folder per user
(``$MEDSBENCH_CPU_DIR``, default ``TMPDIR/medsbench-cpu-UID``), the live processes are the files still
locked (a killed process's lock goes with it), and each process uses ``usable // live`` threads (at least
one), re-read every few seconds so a process that started alone gives CPUs back when another starts.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
V1_FOLDERS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup quota under ``root`` (v2 ``cpu.max`` first, then v1), or None for no quota."""
    text = _read(root / "cpu.max")
    if text:
        parts = text.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    for folder in ("", *V1_FOLDERS):
        base = root / folder if folder else root
        quota_text, period_text = _read(base / "cpu.cfs_quota_us"), _read(base / "cpu.cfs_period_us")
        if quota_text is None or period_text is None:
            continue
        try:
            quota, period = int(quota_text), int(period_text)
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where the OS has no such call)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def usable_cpus(root: Path = CGROUP) -> int:
    """The CPUs this process may really use: affinity mask and cgroup quota, whichever is smaller (>= 1)."""
    n = affinity_cpus()
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        n = min(n, max(1, math.floor(limit)))
    return max(1, n)


def torch_threads(requested: int | None, root: Path = CGROUP) -> int:
    """Compute threads for torch: ``requested`` if given, else :func:`usable_cpus` capped by a set ``OMP_NUM_THREADS``."""
    if requested:
        return int(requested)
    n = usable_cpus(root)
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        n = min(n, int(env))
    return n


def share_folder() -> Path:
    """Where computing medsbench processes of this user keep their lock files."""
    base = os.environ.get("MEDSBENCH_CPU_DIR") or os.path.join(tempfile.gettempdir(), f"medsbench-cpu-{os.getuid()}")
    return Path(base)


class CpuShare:
    """This process's share of ``usable`` CPUs among the live medsbench processes (see the module notes).

    ``threads()`` is ``max(1, usable // live)``, recounted at most every ``every`` seconds. Without
    ``fcntl`` (Windows) or a writable folder the share is the whole ``usable`` (nothing to coordinate with).
    """

    def __init__(self, usable: int, folder: Path | None = None, every: float = 2.0):
        self.usable, self.every = max(1, usable), every
        self.folder = folder or share_folder()
        self._fh = None
        self._own = f"{os.getpid()}.lock"
        self._enabled = False
        self._counted_at = -math.inf
        self._threads = self.usable
        try:
            import fcntl

            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fh = open(self.folder / self._own, "a")  # noqa: SIM115 - held for the process's life
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fh = fh
            except BlockingIOError:  # another share of this process holds the process's file already
                fh.close()
            self._enabled = True
        except (ImportError, OSError):
            self._enabled = False

    def live(self) -> int:
        """Processes holding their lock file now (this one included); stale files are removed."""
        if not self._enabled:
            return 1
        import fcntl

        own = self._own
        n = 1
        for path in self.folder.glob("*.lock"):
            if path.name == own:
                continue
            try:
                with open(path, "a") as other:
                    try:
                        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        n += 1  # its process holds it: alive
                        continue
                    path.unlink(missing_ok=True)  # nobody holds it: its process is gone
            except OSError:
                continue
        return n

    def threads(self) -> int:
        now = time.monotonic()
        if now - self._counted_at >= self.every:
            self._counted_at = now
            self._threads = max(1, self.usable // self.live())
        return self._threads

    def close(self) -> None:
        if self._fh is not None:
            path = Path(self._fh.name)
            self._fh.close()
            path.unlink(missing_ok=True)
            self._fh = None
