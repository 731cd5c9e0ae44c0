"""Extending the benchmark without editing medsbench's source: a new metric is one scorer module
(in the scorers package) plus a catalog line; a new category is catalog data; and the label set
of a closed-label task comes from the scorer, the catalog or the full task file, never from the
sample being scored.
"""

from __future__ import annotations

import importlib
import sys
import threading
from importlib import resources

import pytest
import yaml

from medsbench.metrics import registry
catalog_module = importlib.import_module("medsbench.tasks.catalog")

TOY_MODULE = '''
"""A toy metric: exact match after trimming, with its own statistics kind."""
import numpy as np

from medsbench.metrics.registry import Kind, Scorer, register_kind, register_scorer


def _exact(s, strict):
    return {"exact": 100 * np.divide(s[..., 0], np.maximum(s[..., 1], 1))}


register_kind(Kind("toy_exact", ("hit", "n"), _exact, verdict=lambda row: int(row[0] > 0),
                   names=(("exact", "exact match", "EM"),)))
register_scorer(Scorer(
    "toy_exact", "toy exact match", "toy_exact", "toy_exact", "exact", ("exact",),
    reference=lambda r: [float((r.output or "") == (r.reference or "")), 1.0],
    strict=lambda r, labels: ([float((r.output or "").strip() == (r.reference or "").strip()), 1.0], True),
    gold_label=lambda gold, input_text=None: gold.strip().lower(),
))
'''

EXTRA_TASKS = """
  - id: task9001
    slug: toy
    title: "Toy exact-match task"
    category: nli
    scorer: toy_exact
    dataset: "toy"
    language: en
    availability: public-here
"""

EXTRA_CATEGORY = """
  triage:
    title: Triage level
    scorer: nli_like
    shots: 0
    max_new_tokens: 20
"""


@pytest.fixture()
def extended(monkeypatch, tmp_path):
    """A registry and catalog that can be extended inside one test and are restored after it."""
    registry.all_scorers()  # the built-in scorers, loaded before the snapshot
    tables = (registry._SCORERS, registry.KINDS, registry.METRIC_TITLES, registry.METRIC_SHORT)
    saved = [dict(t) for t in tables]
    packaged = resources.files("medsbench.tasks").joinpath("catalog.yaml").read_text(encoding="utf-8")

    def use_catalog(categories: str = "", tasks: str = "") -> None:
        text = packaged.replace("\ncategories:\n", "\ncategories:\n" + categories.strip("\n") + "\n", 1) if categories else packaged
        text = text.replace("\ntasks:\n", "\ntasks:\n" + tasks.strip("\n") + "\n", 1) if tasks else text
        monkeypatch.setattr(catalog_module, "load_catalog", lambda: catalog_module.parse_catalog(yaml.safe_load(text)))

    yield use_catalog
    for table, before in zip(tables, saved):  # the registry tables are shared by reference: restore in place
        table.clear()
        table.update(before)


def test_a_new_metric_is_one_scorer_module_and_a_catalog_line(extended, monkeypatch, tmp_path):
    from medsbench.commands.score import task_table
    from medsbench.metrics import headline_metrics, item_verdicts, score_predictions, scorer_for_task
    from medsbench.records import PredictionRow
    from medsbench.metrics.audit import audit_file
    from medsbench.tasks.format import Instance, write_task

    # the scorer module, dropped into the scorers package (here: a folder added to its path)
    (tmp_path / "toy_exact.py").write_text(TOY_MODULE, encoding="utf-8")
    package = importlib.import_module("medsbench.metrics.scorers")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_LOADED", threading.Event())  # as in a fresh process
    monkeypatch.delitem(sys.modules, "medsbench.metrics.scorers.toy_exact", raising=False)
    extended(tasks=EXTRA_TASKS)  # the catalog line

    scorer = scorer_for_task("task9001")
    assert scorer is not None and scorer.name == "toy_exact" and not scorer.is_text and scorer.column == "EM"
    assert headline_metrics("task9001") == ("exact",)
    rows = [{"task_id": "task9001", "id": str(i), "input": f"q{i}", "reference": gold, "output": out}
            for i, (gold, out) in enumerate([("yes", "yes"), ("no", " no "), ("no", "yes"), ("no", "no")])]
    res = score_predictions(rows, bootstrap=50)
    t = res.tasks["task9001"]
    assert t.scorer == "toy_exact" and t.metric == "exact"
    assert t.metrics == {"exact": 75.0} and t.reference == {"exact": 50.0} and "exact" in t.ci
    assert (t.majority_label, t.majority_baseline) == (None, None)  # its primary metric is not accuracy
    verdicts = item_verdicts([PredictionRow(**r) for r in rows])
    assert verdicts == [(1, 1), (0, 1), (0, 0), (1, 1)]
    table = task_table(res, "toy")
    assert [c.header for c in table.columns][:3] == ["task", "n", "metric"]
    assert list(table.columns[2].cells) == ["EM"]
    # data audit reads the toy's golds with the toy's rule
    path = tmp_path / "task9001_toy.test.json"
    write_task(path, {"Definition": ["d"], "medsbench": {"task_id": "task9001", "split": "test"}},
               [Instance(str(i), f"q{i}", [g]) for i, g in enumerate(["Yes", "no ", "NO", "no"])])
    audit = audit_file(path)
    assert audit.label_distribution == {"no": 3, "yes": 1} and audit.majority_baseline == 75.0


def test_a_new_category_is_catalog_data(extended, tmp_path):
    from medsbench.metrics import register_scorer, score_predictions, scorer_for_task
    from medsbench.metrics.scorers.closed import closed_scorer
    from medsbench.metrics import reference as R
    from medsbench.tasks.format import Instance, write_task
    from medsbench.tasks.workspace import resolve_tasks

    # a scorer for the new category, registered with one call (a scorer module would make the same call)
    register_scorer(closed_scorer("nli_like", "triage level 1-3", lambda r: R.nli(r.output, r.reference),
                                  ("level 1", "level 2", "level 3")))
    extended(categories=EXTRA_CATEGORY, tasks="""
  - id: task9002
    slug: triage
    title: "Toy triage"
    category: triage
    dataset: "toy"
    language: en
    availability: public-here
""")
    assert scorer_for_task("triage").name == "nli_like" and scorer_for_task("task9002").name == "nli_like"
    write_task(tmp_path / "task9002_triage.test.json", {"Definition": ["Give the triage level."], "Categories": ["Triage"]},
               [Instance(str(i), f"case {i}", [f"Level {1 + i % 3}"]) for i in range(6)])
    entries, files, _ = resolve_tasks("triage", tmp_path, validate=False)
    assert [e.id for e in entries] == ["task9002"] and "test" in files["task9002"]
    rows = [{"task_id": "task9002", "id": str(i), "input": "case", "reference": gold, "output": out}
            for i, (gold, out) in enumerate([("Level 1", "The answer is level 1."), ("Level 3", "level 2"),
                                             ("Level 3", "Level 3 or level 2")])]
    res = score_predictions(rows, bootstrap=0)
    t = res.tasks["task9002"]
    assert t.category == "triage" and t.metrics == {"accuracy": pytest.approx(100 / 3, abs=1e-3)}
    assert t.label_source == "scorer" and t.parse_failure_rate == 0.0
    assert res.categories["triage"].tasks == ["task9002"] and res.categories["triage"].metric == "accuracy"


# --------------------------------------------------------------- closed label sets


def _sample(task_id, items):
    return [{"task_id": task_id, "id": str(i), "input": f"claim {i}", "reference": g, "output": o}
            for i, (g, o) in enumerate(items)]


def test_a_valid_label_absent_from_the_sample_is_no_parse_failure():
    """HealthFact (task16) labels are 0, 1, 2 (the catalog's labels); a 3-item sample without a 2."""
    from medsbench.metrics import score_predictions

    res = score_predictions(_sample("task16", [("0", "2"), ("1", "1"), ("1", "0")]), bootstrap=0)
    t = res.tasks["task16"]
    assert t.parse_failure_rate == 0.0 and t.metrics["accuracy"] == pytest.approx(100 / 3, abs=1e-3)
    assert t.label_source == "scorer + catalog"
    assert not any("outside" in w for w in res.warnings)


def test_labels_of_the_full_task_file(tmp_path):
    """A workspace task the catalog does not list: the label set comes from its full test file."""
    from medsbench.metrics import score_predictions, task_file_golds
    from medsbench.tasks.format import Instance, write_task

    golds = ["true", "false", "mixture", "true", "false", "mixture", "unproven"]
    path = tmp_path / "task9003_claims.test.json"
    write_task(path, {"Definition": ["d"]}, [Instance(str(i), f"claim {i}", [g]) for i, g in enumerate(golds)])
    sample = [dict(r, category="fact_verification") for r in _sample("task9003", [("true", "mixture"), ("false", "false"),
                                                                                   ("true", "unproven")])]
    res = score_predictions(sample, bootstrap=0, labels={"task9003": task_file_golds(path)})
    t = res.tasks["task9003"]
    assert t.parse_failure_rate == 0.0 and t.label_source == "scorer + task file"
    assert t.metrics["accuracy"] == pytest.approx(100 / 3, abs=1e-3)
    # without the task file: the golds outside the known labels come from the sample, said so, and a
    # valid label the sample lacks ("mixture") cannot be parsed
    res = score_predictions(sample, bootstrap=0)
    t = res.tasks["task9003"]
    assert t.label_source == "scorer + scored golds" and t.parse_failure_rate == pytest.approx(2 / 3, abs=1e-4)
    assert any("task9003" in w and "pass the task file's labels" in w for w in res.warnings)


def test_score_cli_takes_label_sets_from_a_task_folder(tmp_path):
    import json
    import subprocess
    import sys

    from medsbench.tasks.format import Instance, write_task

    tasks = tmp_path / "tasks"
    golds = ["true", "false", "mixture", "unproven"] * 3
    write_task(tasks / "task9004_claims.test.json",
               {"Definition": ["d"], "medsbench": {"task_id": "task9004", "split": "test", "bench_category": "fact_verification"}},
               [Instance(str(i), f"claim {i}", [g]) for i, g in enumerate(golds)])
    pred = tmp_path / "predictions.jsonl"
    sample = [dict(r, category="fact_verification") for r in _sample("task9004", [("true", "mixture"), ("false", "false")])]
    pred.write_text("".join(json.dumps(r) + "\n" for r in sample), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "medsbench.cli", "score", str(pred), "--bootstrap", "0",
                           "--tasks-dir", str(tasks)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    t = json.loads((tmp_path / "results.json").read_text())["tasks"]["task9004"]
    assert t["parse_failure_rate"] == 0.0 and t["label_source"] == "scorer + task file"
