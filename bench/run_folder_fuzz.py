"""Hostile run folders through every stage that reads one: ``score``, ``board add``, ``board build`` and
``judge --report``. A real finished run (a deterministic fake model on the bench task files) is copied
and one of its files mutated: identifiers with ``../``, absolute paths, NUL, HTML or 10 MB strings,
duplicated and unplanned rows, broken JSON (``tests/fuzzing.py``). Every command must answer with exit 0
or one ``error:`` line (never a traceback), and nothing may be written outside the run folder, the
workspace and the site folder. Prints inputs tried, exit codes, tracebacks and files outside their roots.

Usage: python bench/run_folder_fuzz.py [N] [SEED]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzzing import fuzz_run_folders  # noqa: E402


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = fuzz_run_folders(Path(tmp), n, seed)
    print(f"run folders tried: {n}, CLI calls: {res['calls']}, {time.perf_counter() - t0:.1f} s")
    print(f"exit codes: {dict(sorted(res['codes'].items()))}")
    print(f"tracebacks or exits without an error line: {len(res['bad'])}")
    for line in res["bad"][:20]:
        print("  " + line)
    print(f"files written outside their roots: {len(res['outside'])}")
    for line in res["outside"][:20]:
        print("  " + line)
    return 1 if res["bad"] or res["outside"] else 0


if __name__ == "__main__":
    sys.exit(main())
