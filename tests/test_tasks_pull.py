"""`medsbench data pull`: import the released MedS-Bench layout from a folder and, offline, from the HF cache.

Every task file here is SYNTHETIC: made-up instances in the shape of the released
files (category folders, official JSON objects and .jsonl files), generated in a
fixture. No released text is copied.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from medsbench.errors import MedsbenchError
from medsbench.tasks import (
    catalog,
    find_task_files,
    iter_instances,
    read_meta,
    validate_file,
)
from medsbench.tasks.pull import (
    folder_category,
    import_release,
    pull_hub,
    read_release_file,
)
from medsbench.tasks.workspace import check_task_file, resolve_tasks

REPO = Path(__file__).resolve().parents[1]
COMMIT = "5e1f0c0ffee0123456789abcdef0123456789abc"  # synthetic commit hash

# The 21 released paths a third-party adapter lists (the layout under test).
RELEASED = [
    "Information_extraction/task1_participant_extraction.json",
    "Information_extraction/task2_intervention_extraction.json",
    "Information_extraction/task3_outcome_extraction.json",
    "Information_extraction/task29_drug_dose_extraction.json",
    "Information_extraction/task74_pmc_patient_case_report_basic_information_extraction.json",
    "Fact_verication/task12_pubmedqa_classification.json",
    "Fact_verication/task16_test_healthfact_classification.json",
    "Fact_verication/task100_ebms_answer_vertification.json",
    "Explanation/task18_test_healthfact_sentence_generation.json",
    "Explanation/task46_do_entity_explanation.json",
    "Explanation/task50_biolord_explanation.json",
    "Text_classification/task106_hoc_text_classification.json",
    "MCQA/task122_medmcqa_test_set.json",
    "MCQA/task123_pubmedqa_test_set.json",
    "MCQA/task57_medqa_question_answering_en.jsonl",
    "NER/task125_test_bc4chem_named_enetity_recognition.json",
    "NER/task126_test_bc5chem_named_enetity_recognition.json",
    "NER/task127_test_bc5disease_named_enetity_recognition.json",
    "NER/task128_test_species800_named_enetity_recognition.json",
    "Diagnosis/task130_DDXPlus_text_classification_test.json",
    "Treatment_planning/task131_SEER_text_classification_test.json",
]
SYNTHETIC_DEFINITION = "SYNTHETIC definition for a test: answer the input."


def _instances(task_id: str, category: str, n: int = 4) -> list[dict]:
    """Synthetic instances shaped like each category's released golds (strings, lists, comma-joined golds)."""
    out = []
    for i in range(n):
        inp, gold = f"Synthetic {category} input {i} of {task_id}.", f"synthetic answer {i}"
        if category == "mcqa":
            inp = f"Question: synthetic question {i}?\nOptions:\nA. alpha\nB. beta\nC. gamma\nD. delta"
            gold = "The right answer is yes." if task_id == "task123" else f"The right answer is {'ABCD'[i % 4]}: {['alpha', 'beta', 'gamma', 'delta'][i % 4]}."
        elif category == "ner":
            gold = ["aspirin, ibuprofen."] if i % 2 else "There is no related enetity."  # lists and strings
        elif category == "fact_verification":
            gold = "no" if task_id == "task12" else ("true" if i % 2 else "false")
            if task_id == "task100":
                inp, gold = "Synthetic statement repeated for every item.", f"synthetic justification {i}"
        elif category == "text_classification":
            gold = "evading growth suppressors, resisting cell death" if i % 2 else "None of the hallmarks of cancer."
        elif category == "diagnosis":
            gold = f"The diagnosis result is {['pneumonia', 'asthma'][i % 2]}."
        elif category == "treatment_planning":
            gold = f"The treatment planning is: {['surgery', 'radiation'][i % 2]}."
        out.append({"id": i, "input": inp, "output": gold})
    return out


def _official(task_id: str, category: str, definition: str | None = SYNTHETIC_DEFINITION) -> dict:
    obj = {
        "Contributors": ["synthetic"], "Source": ["synthetic"], "URL": [], "Categories": ["Question Answering"],
        "Reasoning": [], "Definition": [definition] if definition else [], "Input_language": ["English"],
        "Output_language": ["English"], "Instruction_language": ["English"], "Domains": ["Medicine"],
        "Positive Examples": [], "Negative Examples": [], "Instances": _instances(task_id, category),
    }
    if definition is None:
        del obj["Definition"]
    return obj


def write_release(root: Path, jsonl_shape: str = "object") -> Path:
    """A SYNTHETIC copy of the released layout (all 21 paths). ``jsonl_shape`` is how the .jsonl file is written:
    'object' (one JSON object, as the official reader expects), 'instances' (one instance per line, no definition),
    'meta' (medsbench's {"__meta__": ...} header layout)."""
    cat = catalog()
    for rel in RELEASED:
        tid = Path(rel).name.split("_")[0]
        category = cat[tid].category
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        obj = _official(tid, category)
        if path.suffix == ".jsonl" and jsonl_shape == "instances":
            path.write_text("".join(json.dumps(i) + "\n" for i in obj["Instances"]), encoding="utf-8")
        elif path.suffix == ".jsonl" and jsonl_shape == "meta":
            meta = {k: v for k, v in obj.items() if k != "Instances"}
            lines = [json.dumps({"__meta__": meta})] + [json.dumps(i) for i in obj["Instances"]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return root




@pytest.fixture
def release(tmp_path) -> Path:
    return write_release(tmp_path / "MedS-Bench")


def _check_imported(tasks_dir: Path, source_root: Path | None = None) -> dict[str, dict[str, Path]]:
    found = find_task_files(tasks_dir)
    assert sorted(found) == sorted(Path(r).name.split("_")[0] for r in RELEASED)
    cat = catalog()
    for rel in RELEASED:
        tid = Path(rel).name.split("_")[0]
        path = found[tid]["test"]
        assert path.name == cat[tid].file_name("test")
        check_task_file(path)  # the eval gate passes
        errors = [p for p in validate_file(path) if p.level == "error"]
        # `data validate` finds only what the synthetic task100 has on purpose (one input repeated)
        assert all(p.message.startswith("duplicate input") for p in errors) and bool(errors) == (tid == "task100")
        meta = read_meta(path)
        src = meta["medsbench"]["source"]
        assert src["path"] == rel and meta["medsbench"]["bench_category"] == cat[tid].category
        if source_root is not None:
            assert src["sha256"] == hashlib.sha256((source_root / rel).read_bytes()).hexdigest()
        assert len(list(iter_instances(path))) == 4
    return found


@pytest.mark.parametrize("shape", ["object", "instances", "meta"])
def test_from_folder_imports_all_21_released_paths(tmp_path, capsys, shape):
    root = write_release(tmp_path / "rel", jsonl_shape=shape)
    ws = tmp_path / "ws"
    args = ["data", "pull", "--from", str(root), "--workspace", str(ws)]
    if shape == "instances":  # no definition inside the file: it comes from a (synthetic) definitions file
        defs = tmp_path / "defs.json"
        defs.write_text(json.dumps({"task57": {"original_def": SYNTHETIC_DEFINITION, "auto_rewrite_def": []}}))
        args += ["--definitions", str(defs)]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "imported 21 task(s)" in out
    found = _check_imported(ws / "tasks", root)
    meta = read_meta(found["task57"]["test"])
    assert meta["Definition"] == [SYNTHETIC_DEFINITION]
    assert meta["medsbench"]["source"]["shape"] == {"object": "json", "instances": "jsonl-instances", "meta": "jsonl-meta"}[shape]
    # outputs keep their shape: NER list golds stay lists, strings stay strings
    ner = [i for i in iter_instances(found["task126"]["test"])]
    assert ner[1].output == ["aspirin, ibuprofen."] and not ner[1].output_was_str and ner[0].output_was_str
    # the eval selection finds every category
    entries, _, _ = resolve_tasks("all", ws / "tasks")
    assert len(entries) == 21
    assert [e.id for e in resolve_tasks("fact_verification", ws / "tasks")[0]] == ["task12", "task16", "task100"]


def test_jsonl_without_definition_imports_what_it_holds_and_names_what_is_missing(tmp_path, capsys):
    """`data pull --from DIR` without --definitions: a file without a Definition is imported as it is, with one
    error line saying what it holds and what is missing; --definitions appears only as the remedy."""
    root = write_release(tmp_path / "rel", jsonl_shape="instances")
    ws = tmp_path / "ws"
    code, out, err = run_cli(capsys, "data", "pull", "--from", str(root), "--workspace", str(ws))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: MCQA/task57_medqa_question_answering_en.jsonl: holds 4 instance(s) but no Definition (the task's "
        "instruction) and no --definitions file was given; imported without one, so it cannot be prompted until it has "
        "one: re-run with --definitions RewriteDefinitions.json (the paper's task definitions)"
    ]
    assert "imported 21 task(s)" in out
    path = find_task_files(ws / "tasks")["task57"]["test"]
    assert [i.input for i in iter_instances(path)] == [i["input"] for i in _instances("task57", "mcqa")]
    assert read_meta(path)["medsbench"]["source"]["shape"] == "jsonl-instances"
    with pytest.raises(MedsbenchError, match="Definition"):
        check_task_file(path)  # eval refuses it until it has a definition
    # a definitions file without the task: the message names that file, not a flag the user never gave
    defs = tmp_path / "defs.json"
    defs.write_text(json.dumps({"task1": {"original_def": SYNTHETIC_DEFINITION, "auto_rewrite_def": []}}))
    code, out, err = run_cli(capsys, "data", "pull", "--from", str(root), "--workspace", str(ws), "--definitions", str(defs))
    assert code == 1 and "and defs.json (--definitions) has none for task57" in err and "give a --definitions file that has task57" in err
    # and with the task's definition, it imports clean
    defs.write_text(json.dumps({"task57": {"original_def": SYNTHETIC_DEFINITION, "auto_rewrite_def": []}}))
    code, out, err = run_cli(capsys, "data", "pull", "--from", str(root), "--workspace", str(ws), "--definitions", str(defs))
    assert code == 0, err
    check_task_file(path)


def test_category_selection_and_folder_names(release, tmp_path):
    report = import_release(release, tmp_path / "tasks", categories=["NER", "fact_verification"])
    assert [t.task_id for t in report.tasks] == ["task12", "task16", "task100", "task125", "task126", "task127", "task128"]
    assert folder_category("Fact_verication") == "fact_verification"
    assert folder_category("Text_summarization") == "summarization"
    with pytest.raises(MedsbenchError, match="unknown category 'Radiology'"):
        import_release(release, tmp_path / "t2", categories=["Radiology"])


def test_unknown_id_and_misfiled_id_warn(release, tmp_path):
    (release / "Diagnosis" / "task999_synthetic_rare_disease.json").write_text(json.dumps(_official("task999", "diagnosis")))
    moved = release / "NLI"
    moved.mkdir()
    (release / "MCQA" / "task122_medmcqa_test_set.json").rename(moved / "task122_medmcqa_test_set.json")
    report = import_release(release, tmp_path / "tasks")
    assert any("task999 is not in the catalog: imported as 'diagnosis'" in w for w in report.warnings)
    assert any("task122 is 'mcqa' in the catalog but sits in folder NLI ('nli')" in w for w in report.warnings)
    assert not report.errors
    unknown = next(t for t in report.tasks if t.task_id == "task999")
    assert unknown.path.name == "task999_synthetic_rare_disease.test.json" and not unknown.in_catalog
    # eval selects it by category and by id; the catalog's own category decides for task122
    assert "task999" in [e.id for e in resolve_tasks("diagnosis", tmp_path / "tasks")[0]]
    assert resolve_tasks("task999", tmp_path / "tasks")[0][0].category == "diagnosis"
    assert "task122" in [e.id for e in resolve_tasks("mcqa", tmp_path / "tasks")[0]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"Definition": ["x"], "Instances": [', "invalid JSON"),
        ('{"Definition": ["x"], "Instances": 3}', "Instances: missing or not a list"),
        ("", "empty file"),
    ],
)
def test_unreadable_file_is_one_line(release, tmp_path, content, message):
    bad = release / "NER" / "task126_test_bc5chem_named_enetity_recognition.json"
    bad.write_text(content)
    report = import_release(release, tmp_path / "tasks")
    assert len(report.errors) == 1 and len(report.tasks) == 20
    line = report.errors[0]
    assert line.startswith("NER/task126_test_bc5chem_named_enetity_recognition.json") and message in line
    assert "\n" not in line and str(release) not in line


def test_missing_folder_and_empty_release_are_one_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, "data", "pull", "--from", str(tmp_path / "nope"), "--workspace", str(tmp_path / "ws"))
    assert code == 1 and out == "" and err.strip().count("\n") == 0 and "not a folder" in err
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedsbenchError, match="no task files"):
        import_release(tmp_path / "empty", tmp_path / "ws")


def test_release_file_shapes(tmp_path):
    p = tmp_path / "task57_x.jsonl"
    p.write_text('{"input": "q1", "output": "a1"}\n\n{"id": "z", "input": "q2", "output": ["a2", "b2"]}\n')
    meta, inst, shape = read_release_file(p)
    assert (meta, shape) == ({}, "jsonl-instances")
    assert [(i.id, i.input, i.output) for i in inst] == [("0", "q1", ["a1"]), ("z", "q2", ["a2", "b2"])]
    p.write_text('{"input": "q1", "output": "a1"}\n{"input": "q2", "output": \n')
    with pytest.raises(MedsbenchError, match=r"task57_x.jsonl:2: invalid JSON"):
        read_release_file(p)


# ---------------------------------------------------------------- Hugging Face cache, offline


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_hf_cache(cache: Path, release: Path, *, commit: str = COMMIT, extra_listed: list[str] = (),
                   repo_id: str = "Henrychur/MedS-Bench") -> Path:
    """The hub's own cache layout for the dataset: blobs/<hash>, snapshots/<commit>/<path> -> ../../blobs/<hash>,
    refs/main, and the tree listing trees/<commit>.json (``extra_listed`` lists files the snapshot lacks)."""
    repo = cache / ("datasets--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    files = {}
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        rel = path.relative_to(release).as_posix()
        data = path.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(repo / "blobs" / blob, link.parent))
        files[rel] = {"size": len(data), "blob_id": _git_blob_id(data), "lfs_sha256": blob, "lfs_size": len(data)}
    for rel in extra_listed:
        files[rel] = {"size": 1, "blob_id": "0" * 40}
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "trees").mkdir(exist_ok=True)
    (repo / "trees" / f"{commit}.json").write_text(json.dumps({"format_version": 1, "files": files}))
    return repo


def test_offline_pull_resolves_from_the_hf_cache(release, tmp_path):
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE  # conftest: nothing may reach the Hub
    cache = tmp_path / "hf-cache"
    write_hf_cache(cache, release)
    report = pull_hub(tmp_path / "ws" / "tasks", cache_dir=cache)
    assert len(report.tasks) == 21 and not report.errors
    assert report.source == {"kind": "huggingface", "repo": "Henrychur/MedS-Bench", "revision": "main", "commit": COMMIT}
    found = _check_imported(tmp_path / "ws" / "tasks", release)
    src = read_meta(found["task57"]["test"])["medsbench"]["source"]
    assert src["commit"] == COMMIT and src["repo"] == "Henrychur/MedS-Bench"
    # pinned by commit, one category (offline the hub returns the whole snapshot: the patterns are applied here)
    pinned = pull_hub(tmp_path / "ws2" / "tasks", cache_dir=cache, revision=COMMIT, categories=["MCQA"])
    assert [t.task_id for t in pinned.tasks] == ["task57", "task122", "task123"]


def test_offline_missing_revision_or_file_is_one_line(release, tmp_path):
    cache = tmp_path / "hf-cache"
    write_hf_cache(cache, release, extra_listed=["NLI/task41_mednli_test.json"])
    with pytest.raises(MedsbenchError) as info:
        pull_hub(tmp_path / "ws" / "tasks", cache_dir=cache, revision="v9.9")
    assert str(info.value).startswith("Henrychur/MedS-Bench@v9.9: not in the Hugging Face cache") and "\n" not in str(info.value)
    with pytest.raises(MedsbenchError) as info:  # the cached listing names a file the snapshot lacks
        pull_hub(tmp_path / "ws" / "tasks", cache_dir=cache)
    assert "cached snapshot is incomplete" in str(info.value) and "NLI/task41_mednli_test.json" in str(info.value)
    assert "\n" not in str(info.value)
    # the other categories are complete: asking only for them works
    assert len(pull_hub(tmp_path / "ws" / "tasks", cache_dir=cache, categories=["ner"]).tasks) == 4


def test_cli_pull_through_hf_home_offline(release, tmp_path):
    """The real CLI in a fresh process: HF_HOME points at the cache, HF_HUB_OFFLINE=1."""
    home = tmp_path / "hf-home"
    write_hf_cache(home / "hub", release)
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    env.pop("HF_HUB_CACHE", None)
    ws = tmp_path / "ws"
    cmd = [sys.executable, "-m", "medsbench.cli", "data", "pull", "--workspace", str(ws), "--revision", COMMIT]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"imported 21 task(s) from Henrychur/MedS-Bench@{COMMIT}" in done.stdout
    _check_imported(ws / "tasks", release)
    missing = subprocess.run(cmd[:-1] + ["deadbeef" * 5], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "not in the Hugging Face cache" in missing.stderr


def test_eval_runs_on_the_imported_release(release, tmp_path, capsys, tiny_model_dir):
    """`eval --tasks all --limit 1` on the imported files, with the tiny random model."""
    from medsbench.pipeline import evaluate

    code, _, err = run_cli(capsys, "data", "pull", "--from", str(release), "--workspace", str(tmp_path / "ws"))
    assert code == 0, err
    res = evaluate(f"hf:{tiny_model_dir}", "all", workspace=tmp_path / "ws", out=tmp_path / "run", limit=1,
                   max_new_tokens=4, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in rows) == sorted(Path(r).name.split("_")[0] for r in RELEASED)
    assert res.n_items == 21 and res.n_failed == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert set(manifest["tasks"]) == {r["task_id"] for r in rows}
    assert res.results is not None and set(res.results.tasks) == {r["task_id"] for r in rows}  # every task scored


def test_pull_replaces_a_converted_test_split_and_repull_is_quiet(release, tmp_path):
    from medsbench.tasks.format import write_task

    tasks = tmp_path / "tasks"
    write_task(tasks / "task57_medqa_en.test.json", {"Definition": ["ours"], "medsbench": {"task_id": "task57", "split": "test"}},
               [{"id": 0, "input": "converted q", "output": "The right answer is A: x."}])
    write_task(tasks / "task57_medqa_en.train.json", {"Definition": ["ours"], "medsbench": {"task_id": "task57", "split": "train"}},
               [{"id": 0, "input": "train q", "output": "The right answer is A: x."}])
    first = import_release(release, tasks, categories=["mcqa"])
    assert [w for w in first.warnings if "replaces" in w] == [
        "MCQA/task57_medqa_question_answering_en.jsonl: replaces the existing test split of task57 (task57_medqa_en.test.json)"
    ]
    found = find_task_files(tasks)["task57"]
    assert read_meta(found["test"])["medsbench"]["source"]["path"].startswith("MCQA/")
    assert read_meta(found["train"])["Definition"] == ["ours"]  # our train split stays (demos for the medsbench protocol)
    again = import_release(release, tasks, categories=["mcqa"])
    assert not [w for w in again.warnings if "replaces" in w]


def test_truncated_official_object_names_its_line(tmp_path):
    p = tmp_path / "task122_x.json"
    p.write_text(json.dumps(_official("task122", "mcqa"), indent=1)[:-40])
    with pytest.raises(MedsbenchError) as info:
        read_release_file(p)
    last_line = p.read_text().count("\n") + 1
    assert str(info.value) == f"{p}:{last_line}: invalid JSON: unexpected end of data"


def test_task_source_for_the_manifest(release, tmp_path):
    from medsbench.tasks.workspace import task_source

    report = import_release(release, tmp_path / "tasks", categories=["ner"])
    src = task_source(report.tasks[0].path)
    assert src is not None and src["kind"] == "local" and src["path"] == "NER/task125_test_bc4chem_named_enetity_recognition.json"
    assert src["sha256"] == hashlib.sha256((release / src["path"]).read_bytes()).hexdigest()
    from medsbench.tasks.format import write_task

    write_task(tmp_path / "own.test.json", {"Definition": ["d"]}, [{"input": "a", "output": "b"}])
    assert task_source(tmp_path / "own.test.json") is None


def test_clinical_outcome_files_outside_a_category_folder(release, tmp_path):
    """Clinical-outcome files (SYNTHETIC here) may sit at the top level: the catalog gives their category."""
    (release / "task117_synthetic_hospitalization.json").write_text(json.dumps(_official("task117", "clinical_outcome")))
    (release / "task998_synthetic_unknown.json").write_text(json.dumps(_official("task998", "clinical_outcome")))
    report = import_release(release, tmp_path / "tasks", categories=["clinical_outcome"])
    assert [(t.task_id, t.category) for t in report.tasks] == [("task117", "clinical_outcome")]
    full = import_release(release, tmp_path / "all")
    assert "task117" in [t.task_id for t in full.tasks]
    assert full.errors == ["task998_synthetic_unknown.json: task998 is not in the catalog and its folder names no category: skipped"]
