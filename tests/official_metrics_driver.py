"""Runs the official MedS-Bench metric scripts (../shared/reference/meds_ins_official/Metrics) on
prediction CSVs, in a subprocess of its own (their ``from utils import ...`` needs their folder on
sys.path, they write into ``USE2_results/`` of the working directory, and ``MCQA.py`` imports a
``utils.write_results_to_csv`` that does not exist: a no-op is defined before importing it, as
the reference's SOURCE.md says).

Input (stdin, JSON): {"metrics_dir": DIR, "jobs": [{"script", "function", "kwargs", "csv"}]}.
Output (stdout, last line, JSON): one entry per job: {"result": ...} or {"error": "ExcType: msg"}.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def main() -> None:
    spec = json.load(sys.stdin)
    sys.path.insert(0, spec["metrics_dir"])
    sys.setrecursionlimit(10000)
    utils = importlib.import_module("utils")
    utils.write_results_to_csv = lambda *a, **k: None  # MCQA.py imports this missing helper
    out = []
    for job in spec["jobs"]:
        mod = importlib.import_module(job["script"])
        fn = getattr(mod, job["function"])
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                result = fn([job["csv"]], **job.get("kwargs", {}))
            out.append({"result": _jsonable(result)})
        except Exception as exc:  # noqa: BLE001 - the crash itself is the answer
            out.append({"error": f"{type(exc).__name__}: {exc}"})
    sys.stdout.write("\n" + json.dumps(out) + "\n")


if __name__ == "__main__":
    os.chdir(sys.argv[1] if len(sys.argv) > 1 else ".")
    main()
