"""`medsbench ins pull`: the released MedS-Ins (Henrychur/MedS-Ins) from a folder and, offline, from the HF cache.

Every task file here is SYNTHETIC: made-up instances in the released naming (``task<N>_<dataset>_<task>.json``,
Super-NaturalInstructions objects), generated in the tests. No released text is copied.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_tasks_pull import write_hf_cache

from medsbench.errors import MedsbenchError
from medsbench.ins.release import import_release, pull_release, task_list
from medsbench.tasks.format import iter_instances, read_meta, write_task

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # synthetic commit hash
META = {"Contributors": ["synthetic"], "Source": ["synthetic"], "URL": [], "Reasoning": [],
        "Input_language": ["English"], "Output_language": ["English"], "Instruction_language": ["English"],
        "Domains": ["Medicine"], "Positive Examples": [], "Negative Examples": []}


def _instances(tid: str, n: int) -> list[dict]:
    return [{"id": f"{tid}-{i}", "input": f"SYNTHETIC {tid} input {i}: what does finding number {i * 31 % 997} in case {i} suggest?",
             "output": [f"synthetic answer {i % 7}"]} for i in range(n)]


def write_release(root: Path) -> Path:
    """A SYNTHETIC copy of the released layout: a flat folder of task files, one without Categories, one without a
    Definition, one of an id outside the paper's list, and a file that is not a task."""
    root.mkdir(parents=True)
    files = {
        "task115_icd10_code_explanation.json": {**META, "Categories": ["Explanation"], "Definition": ["Explain the code."]},
        "task126_bc5chem_named_enetity_recognition.json": {**META, "Definition": ["Find the chemicals."]},  # no Categories
        "task26_drug_extraction_ade.json": {**META, "Definition": ["Extract the drugs."]},  # no Categories, not in the catalog
        "task19_europa_ecdc_tm_en_sv_translation.json": {**META, "Categories": ["Translation"]},  # no Definition
        "task999_synthetic_extra.json": {**META, "Categories": ["Dialogue"], "Definition": ["Reply."]},  # not in the list
    }
    for name, meta in files.items():
        tid = name.split("_")[0]
        (root / name).write_text(json.dumps({**meta, "Instances": _instances(tid, 40)}), encoding="utf-8")
    (root / "dataset_infos.json").write_text("{}")  # not a task file name
    return root




def test_task_list_is_the_papers_122_tasks():
    tasks = task_list()
    assert len(tasks) == 122 and "task4" not in tasks and "task127" not in tasks and "task136" in tasks
    assert tasks["task126"].category == "Named Entity Recognition"  # a benchmark id: from the catalog
    assert tasks["task26"].category is None  # not known here: said so at import


def test_import_from_folder(tmp_path, monkeypatch):
    import medsbench.tasks.format as fmt

    monkeypatch.setattr(fmt, "_WHOLE_FILE_LIMIT", 1024)  # every file takes the streaming (ijson) path
    root = write_release(tmp_path / "rel")
    out = tmp_path / "ws" / "meds-ins"
    report = import_release(root, out)
    by = {t.task_id: t for t in report.tasks}
    assert list(by) == ["task19", "task26", "task115", "task126", "task999"]  # task order
    assert (by["task115"].category, by["task115"].category_basis) == ("Explanation", "file")
    assert (by["task126"].category, by["task126"].category_basis) == ("Named Entity Recognition", "catalog")
    assert (by["task26"].category, by["task26"].category_basis) == (None, "unknown")
    assert any("task26's MedS-Ins category is unknown" in w for w in report.warnings)
    assert any("task999 is not in the paper's MedS-Ins task list" in w for w in report.warnings)
    assert any("dataset_infos.json: not a task file name" in w for w in report.warnings)
    assert [e for e in report.errors if "no Definition" in e] == [report.errors[0]] and len(report.errors) == 1
    assert "task19_europa_ecdc_tm_en_sv_translation.json: holds 40 instance(s)" in report.errors[0]
    for t in report.tasks:
        assert t.path.name.endswith(".train.jsonl") and t.instances == 40
        meta = read_meta(t.path)
        ours = meta["medsbench"]
        assert ours["split"] == "train" and ours["task_id"] == t.task_id and ours["ins_category"] == t.category
        assert ours["source"]["sha256"] == hashlib.sha256((root / t.source_path).read_bytes()).hexdigest()
        assert [i.id for i in iter_instances(t.path)] == [f"{t.task_id}-{i}" for i in range(40)]
    assert read_meta(by["task126"].path)["Categories"] == ["Named Entity Recognition"]
    assert read_meta(by["task26"].path)["Categories"] == []
    assert len(report.missing) == 122 - 4
    # a rerun reads nothing it has already imported, except a task still without a definition
    again = import_release(root, out, definitions={"task19": "Translate."}, definitions_name="defs.json")
    assert {t.task_id: t.status for t in again.tasks} == {"task19": "imported", "task26": "unchanged", "task115": "unchanged",
                                                          "task126": "unchanged", "task999": "unchanged"}
    assert [t.instances for t in again.tasks] == [40] * 5 and not again.errors
    assert read_meta(by["task19"].path)["Definition"] == ["Translate."]
    with pytest.raises(MedsbenchError, match="not a folder"):
        import_release(tmp_path / "nope", out)


def test_offline_pull_from_the_hf_cache_pinned(tmp_path):
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE
    release = write_release(tmp_path / "rel")
    cache = tmp_path / "hf-cache"
    write_hf_cache(cache, release, commit=COMMIT, repo_id="Henrychur/MedS-Ins")
    report = pull_release(tmp_path / "ws" / "meds-ins", cache_dir=cache, revision=COMMIT)
    assert report.source == {"kind": "huggingface", "repo": "Henrychur/MedS-Ins", "revision": COMMIT, "commit": COMMIT}
    src = read_meta(next(t.path for t in report.tasks if t.task_id == "task115"))["medsbench"]["source"]
    assert (src["repo"], src["commit"], src["path"]) == ("Henrychur/MedS-Ins", COMMIT, "task115_icd10_code_explanation.json")
    with pytest.raises(MedsbenchError, match="Henrychur/MedS-Ins@v9: not in the Hugging Face cache"):
        pull_release(tmp_path / "ws2", cache_dir=cache, revision="v9")


def test_cli_pull_then_build_a_decontaminated_mixture_from_the_release(tmp_path):
    """`ins pull` (fresh process, HF_HOME cache, offline), then `ins build --tasks WS/meds-ins`: the benchmark test
    split in WS/tasks (here holding copies of 5 released instances) is decontaminated against by default."""
    release = write_release(tmp_path / "rel")
    home = tmp_path / "hf-home"
    write_hf_cache(home / "hub", release, commit=COMMIT, repo_id="Henrychur/MedS-Ins")
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    env.pop("HF_HUB_CACHE", None)
    ws = tmp_path / "ws"
    cli = [sys.executable, "-m", "medsbench.cli"]
    done = subprocess.run([*cli, "ins", "pull", "--workspace", str(ws), "--revision", COMMIT], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1  # task19 has no Definition: imported, one error line
    assert f"imported 5 task(s) (200 instances) from Henrychur/MedS-Ins@{COMMIT}" in done.stdout
    assert "1 with an unknown category" in done.stdout
    assert [ln for ln in done.stderr.splitlines() if ln.startswith("error:")][0].startswith(
        "error: task19_europa_ecdc_tm_en_sv_translation.json: holds 40 instance(s) but no Definition")
    (ws / "meds-ins" / "task19_europa_ecdc_tm_en_sv_translation.train.jsonl").unlink()  # what a user without definitions does
    test = [{"id": f"t{i}", "input": inst["input"], "output": "x"} for i, inst in enumerate(_instances("task115", 40)[:5])]
    meta = {**META, "Categories": ["Explanation"], "Definition": ["Explain."], "medsbench": {"task_id": "task46", "split": "test"}}
    write_task(ws / "tasks" / "task46_disease_ontology.test.json", meta, test)
    out = ws / "mixtures" / "meds-ins"
    done = subprocess.run([*cli, "ins", "build", "--tasks", str(ws / "meds-ins"), "--workspace", str(ws), "--out", str(out),
                           "--no-near-dup", "--workers", "2"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["decontamination"]["test_files"] == [str(ws / "tasks" / "task46_disease_ontology.test.json")]
    assert stats["tasks"]["task115"]["contaminated"] == 5 and stats["totals"]["input"] == 160
    assert {"Explanation", "Named Entity Recognition", "unknown", "Dialogue"} <= set(stats["shares"]["category"])
    assert "| unknown |" in (out / "card.md").read_text()
