"""Golden scoring numbers: deterministic prediction sets over every real converted test task.

``build_sets(tasks_dir)`` makes prediction sets from the test splits of every catalog task
that ``medsbench data convert --all`` builds from ../shared/data/raw:

* ``gold``: the gold answer as the prediction;
* ``rotated``: each item answered with the gold of the next item of its task (mostly wrong);
* ``mixed``: by item position, the gold, a rotated gold, the lower-cased gold, its first half,
  an empty output, two golds on two lines, ``N/A``, a JSON null;
* ``mixed_csv``: ``mixed`` written as the official CSV (pairs by input, NaN-like cells).

``summarize(results)`` keeps only the numbers of a results.json. The fixture
``tests/data/metrics_golden.json`` was written by the scoring code of main before the scorer
registry (``python tests/metrics_golden.py WRITE`` with that code); ``test_metrics_golden.py``
checks that the numbers are reproduced.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "data" / "metrics_golden.json"
RAW = HERE.parent.parent / "shared" / "data" / "raw"
BOOTSTRAP = 100


def gold_rows(tasks_dir: Path) -> list[dict[str, Any]]:
    from medsbench.tasks import catalog, find_task_files, iter_instances

    rows: list[dict[str, Any]] = []
    for tid, splits in sorted(find_task_files(tasks_dir).items()):
        if tid in catalog() and "test" in splits:
            for inst in iter_instances(splits["test"]):
                rows.append({"task_id": tid, "id": inst.id, "input": inst.input, "reference": inst.target})
    return rows


def _mixed(i: int, gold: str, other: str) -> str | None:
    k = i % 8
    return [gold, other, gold.lower(), gold[: len(gold) // 2], "", gold + "\n" + other, "N/A", None][k]


def build_sets(tasks_dir: Path) -> dict[str, list[dict[str, Any]]]:
    base = gold_rows(tasks_dir)
    by_task: dict[str, list[int]] = {}
    for n, r in enumerate(base):
        by_task.setdefault(r["task_id"], []).append(n)
    nxt: dict[int, int] = {}
    pos: dict[int, int] = {}
    for idx in by_task.values():
        for j, n in enumerate(idx):
            nxt[n] = idx[(j + 1) % len(idx)]
            pos[n] = j
    sets: dict[str, list[dict[str, Any]]] = {"gold": [], "rotated": [], "mixed": []}
    for n, r in enumerate(base):
        gold, other = r["reference"], base[nxt[n]]["reference"]
        sets["gold"].append({**r, "output": gold})
        sets["rotated"].append({**r, "output": other})
        sets["mixed"].append({**r, "output": _mixed(pos[n], gold, other)})
    return sets


def write_files(sets: dict[str, list[dict[str, Any]]], out: Path) -> dict[str, Path]:
    """One predictions.jsonl per set, plus ``mixed_csv`` as the official CSV."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, rows in sets.items():
        path = out / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        paths[name] = path
    path = out / "mixed_csv.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task_id", "input", "GT", "output"])
        for r in sets["mixed"]:
            w.writerow([r["task_id"], r["input"], r["reference"], r["output"] or ""])
    paths["mixed_csv"] = path
    return paths


TASK_KEYS = ("n", "n_reference", "metric", "metrics", "reference", "ci", "reference_ci", "parse_failure_rate", "empty_rate")


def summarize(results: Any) -> dict[str, Any]:
    """The numbers of a results.json (a dict, or a record with ``model_dump``)."""
    if hasattr(results, "model_dump"):
        results = results.model_dump(mode="json")
    tasks = {tid: {k: _plain(t.get(k)) for k in TASK_KEYS} for tid, t in results["tasks"].items()}
    cats = {c: {"tasks": v["tasks"], "metrics": v["metrics"], "reference": v["reference"]}
            for c, v in results["categories"].items()}
    pooled = {p: {"n": v["n"], "metrics": v["metrics"], "reference": v["reference"]} for p, v in results["pooled"].items()}
    return {"n_rows": results["n_rows"], "tasks": tasks, "categories": cats, "pooled": pooled}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def score_all(tasks_dir: Path, work: Path) -> dict[str, Any]:
    from medsbench.metrics import score_predictions

    paths = write_files(build_sets(tasks_dir), work)
    return {name: summarize(score_predictions(path, bootstrap=BOOTSTRAP, seed=0)) for name, path in paths.items()}


def convert_real(out: Path) -> Path:
    from medsbench.sources.registry import convert_all

    convert_all(RAW, out)
    return out


if __name__ == "__main__":  # python tests/metrics_golden.py WRITE [tasks_dir]
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="metrics-golden-"))
    tasks = Path(sys.argv[2]) if len(sys.argv) > 2 else convert_real(tmp / "tasks")
    numbers = score_all(tasks, tmp / "preds")
    if sys.argv[1:2] == ["WRITE"]:
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
    else:
        print(json.dumps(numbers, indent=1)[:2000])
