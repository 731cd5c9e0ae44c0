"""Golden scoring numbers: deterministic prediction sets over every real converted test task.

``build_sets(tasks_dir)`` makes prediction sets from the test splits of every catalog task
that ``medsbench data convert --all`` builds from ../shared/data/raw:

* ``gold``: the gold answer as the prediction;
* ``rotated``: each item answered with the gold of the next item of its task (mostly wrong);
* ``mixed``: by item position, the gold, a rotated gold, the lower-cased gold, its first half,
  an empty output, two golds on two lines, ``N/A``, a JSON null;
* ``mixed_csv``: ``mixed`` written as the official CSV (pairs by input, NaN-like cells);
* ``synthetic``: the ``mixed`` perturbations over SYNTHETIC gold strings in the converters'
  formats for the categories whose raw data is credentialed or absent here (diagnosis,
  treatment, outcome, NLI, fact verification incl. task100, explanation, rationale, CT).

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


def golden_task_ids() -> set[str] | None:
    """The real tasks the fixture was made from: tasks converted later (new sources) are not in it."""
    if not FIXTURE.is_file():
        return None
    return set(json.loads(FIXTURE.read_text(encoding="utf-8"))["gold"]["tasks"])


def gold_rows(tasks_dir: Path) -> list[dict[str, Any]]:
    from medsbench.tasks import catalog, find_task_files, iter_instances

    only = golden_task_ids()
    rows: list[dict[str, Any]] = []
    for tid, splits in sorted(find_task_files(tasks_dir).items()):
        if tid in catalog() and "test" in splits and (only is None or tid in only):
            for inst in iter_instances(splits["test"]):
                rows.append({"task_id": tid, "id": inst.id, "input": inst.input, "reference": inst.target})
    return rows


def _mixed(i: int, gold: str, other: str) -> str | None:
    k = i % 8
    return [gold, other, gold.lower(), gold[: len(gold) // 2], "", gold + "\n" + other, "N/A", None][k]


# SYNTHETIC golds (realistic shapes, not real records) for tasks without real data here.
SYNTHETIC = {
    "task130": ["The diagnosis result is Pneumonia.", "The diagnosis result is Bronchitis.", "The diagnosis result is URTI.",
                "The diagnosis result is Acute pulmonary edema.", "The diagnosis result is Anemia."],
    "task131": ["The treatment planning is: Radiation after surgery", "The treatment planning is: Radiation prior to surgery",
                "The treatment planning is: No radiation and/or cancer-directed surgery"],
    "task117": ["True", "False", "False", "True", "False"],
    "task41": ["entailment", "contradiction", "neutral", "entailment"],
    "task42": ["The patient has a history of heart failure.", "No evidence of infection was found.", "She denies chest pain."],
    "task16": ["yes", "no", "no", "yes"],
    "task100": ["The evidence supports aspirin.", "There is no sufficient evidence.", "The claim is refuted by two trials."],
    "task18": ["Aspirin is a drug. It reduces pain, fever, and inflammation.", "Metformin lowers blood glucose."],
    "task51": ["患者男性，65岁，因胸痛入院。诊断为急性心肌梗死。", "给予阿司匹林治疗。"],
    "task52": ["The patient's symptoms suggest myocardial infarction; aspirin is first-line.", "Answer B is right because of the ECG."],
    "task54": ["患者は65歳男性で、胸痛のため入院した。", "アスピリンを投与した。"],
    "task55": ["Пациенту следует назначить аспирин.", "Диагноз: инфаркт миокарда."],
    "task83": ["No acute intrathoracic process. Stable small nodule.", "Small right pleural effusion. No pneumothorax."],
    "task89": ["No acute intracranial abnormality.", "Chronic small vessel ischemic changes."],
}


def synthetic_rows(repeat: int = 3) -> list[dict[str, Any]]:
    rows = []
    for tid, golds in SYNTHETIC.items():
        for k in range(repeat * len(golds)):
            gold, other = golds[k % len(golds)], golds[(k + 1) % len(golds)]
            rows.append({"task_id": tid, "id": f"syn{k}", "input": f"synthetic input {k}", "reference": gold,
                         "output": _mixed(k, gold, other)})
    return rows


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
    sets["synthetic"] = synthetic_rows()
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
