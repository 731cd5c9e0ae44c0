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
"""

from __future__ import annotations

import math
import os
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
