"""tasks.workspace: scanning, ordering, selection, definitions and validation on read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsbench.errors import MedsbenchError
from medsbench.tasks.format import Instance, write_task
from medsbench.tasks.workspace import (
    check_task_file,
    find_task_files,
    load_definitions,
    load_task,
    resolve_tasks,
    task_order,
    validate_selected,
)

DEF = ["Given a question and a list of options, select the correct answer from the options directly."]


def _mcqa(n: int = 3) -> list[Instance]:
    return [Instance(str(i), f"Question: q{i}?\nOptions:\nA. x\nB. y", ["The right answer is A: x."]) for i in range(n)]


def _workspace(root: Path) -> Path:
    tasks = root / "tasks"
    write_task(tasks / "task57_medqa_en.test.json", {"Definition": DEF}, _mcqa())
    write_task(tasks / "task126_bc5cdr_chem.test.json", {"Definition": ["Find chemicals."]},
               [Instance("0", "aspirin helps.", ["aspirin."])])
    write_task(tasks / "task126_bc5cdr_chem.train.json", {"Definition": ["Find chemicals."]},
               [Instance("t0", "ibuprofen too.", ["ibuprofen."])])
    write_task(tasks / "task10_x.test.jsonl", {"Definition": ["d"]}, [Instance("0", "in", ["out"])])  # not in catalog
    (tasks / ".hidden.json").write_text("not json")
    return tasks


def test_task_order_is_numeric_and_puts_other_ids_last():
    ids = ["task100", "pooled:ct1", "task2", "task10", "bc2gm_ner", "task2a", "ncbi_disease_ner"]
    assert sorted(ids, key=task_order) == ["bc2gm_ner", "task2", "task2a", "task10", "task100", "ncbi_disease_ner", "pooled:ct1"]


def test_the_old_homes_use_the_one_task_order():
    from medsbench.board import site
    from medsbench.ins import build
    from medsbench.metrics import score
    from medsbench.tasks import workspace

    assert site._task_order is build._task_order is score._task_order is workspace.task_order


def test_find_task_files_maps_ids_and_splits_in_task_order(tmp_path):
    tasks = _workspace(tmp_path)
    found = find_task_files(tasks)
    assert list(found) == ["task10", "task57", "task126"]
    assert found["task126"] == {"test": tasks / "task126_bc5cdr_chem.test.json", "train": tasks / "task126_bc5cdr_chem.train.json"}
    assert find_task_files(tmp_path / "absent") == {}


def test_resolve_tasks_selects_catalog_tasks_and_reports_skips(tmp_path):
    tasks = _workspace(tmp_path)
    entries, _, skipped = resolve_tasks("ner,task57", tasks)
    assert [e.id for e in entries] == ["task57", "task126"]
    assert "task127" in skipped and "task10" not in [e.id for e in entries]
    with pytest.raises(MedsbenchError, match="task58 .* has no test file"):
        resolve_tasks("task58", tasks)
    with pytest.raises(MedsbenchError, match="unknown task or category 'nope'"):
        resolve_tasks("nope", tasks)


def test_load_definitions_reads_original_def(tmp_path):
    path = tmp_path / "defs.json"
    path.write_text(json.dumps({"task57": {"original_def": "Pick one.", "auto_rewrite_def": ["x"]}, "task1": {"original_def": ["A list."]}}))
    assert load_definitions(path) == {"task57": "Pick one.", "task1": "A list."}
    assert load_definitions(None) == {}
    path.write_text("[1, 2]")
    with pytest.raises(MedsbenchError, match="must be one JSON object"):
        load_definitions(path)


@pytest.mark.parametrize(
    ("meta", "instances", "where", "message"),
    [
        ({"Definition": DEF}, [{"id": 0, "input": "q", "output": "a"}, {"id": 1, "output": "a"}], ":1", "input: must be a string, got NoneType"),
        ({"Definition": DEF}, [{"id": 0, "input": "q", "output": "a"}, {"id": 1, "input": "q2"}], ":1", "output: must be a non-empty string or list"),
        ({"Definition": DEF}, [{"id": 0, "input": "q", "output": ""}], ":0", "output: empty output"),
        ({"Categories": ["Question Answering"]}, [{"id": 0, "input": "q", "output": "a"}], "", "Definition: missing required key"),
        ({"Definition": ["  "]}, [{"id": 0, "input": "q", "output": "a"}], "", "Definition: empty definition"),
    ],
)
def test_load_task_and_selection_refuse_broken_files_in_one_line(tmp_path, meta, instances, where, message):
    path = tmp_path / "tasks" / "task57_medqa_en.test.json"
    write_task(path, meta, instances)
    for call in (lambda: load_task(path), lambda: validate_selected([path]), lambda: resolve_tasks("task57", tmp_path / "tasks")):
        with pytest.raises(MedsbenchError) as info:
            call()
        text = str(info.value)
        assert text.startswith(f"{path}{where}: {message}") and "\n" not in text
    # the same rules as `medsbench data validate`
    from medsbench.tasks.validate import validate_file

    assert any(str(p).startswith(f"{path}{where}: {message}") for p in validate_file(path))


def test_duplicates_and_missing_descriptive_keys_do_not_block(tmp_path):
    """Released files repeat inputs (task100): a data-quality finding for `data audit`, not a reason to refuse a run."""
    path = tmp_path / "task100_x.test.json"
    write_task(path, {"Definition": ["Justify."]}, [Instance("0", "same", ["a"]), Instance("0", "same", ["b"])])
    check_task_file(path)
    task = load_task(path)
    assert [i.output for i in task.instances] == [["a"], ["b"]]


def test_validate_selected_takes_the_resolved_map(tmp_path):
    tasks = _workspace(tmp_path)
    validate_selected(find_task_files(tasks))
    write_task(tasks / "task126_bc5cdr_chem.train.json", {"Definition": ["Find chemicals."]}, [{"id": 0, "input": "x"}])
    with pytest.raises(MedsbenchError, match=r"task126_bc5cdr_chem.train.json:0: output"):
        validate_selected(find_task_files(tasks))  # demos come from the train split: it is checked too


def test_eval_refuses_a_broken_file_before_the_model_loads(tmp_path, monkeypatch):
    import medsbench.runs.run

    tasks = _workspace(tmp_path)
    write_task(tasks / "task57_medqa_en.test.json", {"Definition": DEF}, [{"id": 0, "input": "q"}])

    def boom(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(medsbench.runs.run, "load_backend", boom)
    monkeypatch.setattr(medsbench.runs.run, "check_spec", lambda *a, **k: None)
    from medsbench.pipeline import evaluate

    with pytest.raises(MedsbenchError, match=r"task57_medqa_en.test.json:0: output"):
        evaluate("hf:/some/model", "task57", workspace=tmp_path, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_workspace_tasks_outside_the_catalog_are_selectable_by_their_category(tmp_path):
    tasks = _workspace(tmp_path)
    write_task(tasks / "task999_rare.test.json",
               {"Definition": ["Diagnose."], "medsbench": {"task_id": "task999", "slug": "rare", "split": "test", "bench_category": "diagnosis"}},
               [Instance("0", "fever", ["The diagnosis result is flu."])])
    entries, _, _ = resolve_tasks("diagnosis", tasks)
    assert [(e.id, e.category, e.scorer) for e in entries] == [("task999", "diagnosis", None)]
    assert "task999" in [e.id for e in resolve_tasks("all", tasks)[0]]
    assert "task999" in [e.id for e in resolve_tasks("available", tasks)[0]]
    assert resolve_tasks("task999", tasks)[0][0].slug == "rare"


def test_quick_selects_the_first_available_task_of_each_category(tmp_path):
    tasks = _workspace(tmp_path)
    write_task(tasks / "task58_medqa_zh.test.json", {"Definition": DEF}, _mcqa())
    write_task(tasks / "task127_bc5cdr_disease.test.json", {"Definition": ["Find diseases."]},
               [Instance("0", "fever helps.", ["fever."])])
    entries, _files, _skipped = resolve_tasks("quick", tasks)
    # mcqa: task57 before task58; ner: task126 before task127; catalog tasks only (task10 is local)
    assert [e.id for e in entries] == ["task57", "task126"]
    assert {e.category for e in entries} == {"mcqa", "ner"}
