"""QA-family converters on the real raw releases in ../shared/data/raw (counts from each SOURCE.md)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from conftest import RAW, raw_dir

from medsbench.errors import MedsbenchError
from medsbench.sources import convert, sources
from medsbench.tasks.format import read_task

# converter -> raw folder
SOURCES = {
    "medqa_usmle": "medqa_usmle",
    "medqa_mcmle_zh": "medqa_mcmle_zh",
    "medmcqa": "medmcqa",
    "igakuqa": "igakuqa",
    "frenchmedmcqa": "frenchmedmcqa",
    "rumeddanet": "rumeddanet",
    "headqa": "headqa",
    "pubmedqa": "pubmedqa",
    "pubmedqa_verification": "pubmedqa",
    "meqsum": "meqsum",
    "hoc": "hoc",
    "ebm_nlp_pico": "ebm_nlp_pico",
    "liveqa_trec2017": "liveqa_trec2017",
    "medicationqa": "medicationqa",
    "medical_abbreviations": "medical_abbreviations",
    "icd10cm": "icd10cm",
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """Every converter run once: {task_id: {split: Task}}."""
    out = tmp_path_factory.mktemp("qa_tasks")
    tasks: dict[str, dict] = collections.defaultdict(dict)
    for name, folder in SOURCES.items():
        for path in convert(name, raw_dir(folder), out):
            task = read_task(path)
            assert path.parent == out
            tasks[task.task_id][task.split] = task
    return tasks


def by_id(task) -> dict:
    return {inst.id: inst for inst in task.instances}


def dropped(task) -> int:
    return task.meta["medsbench"].get("duplicate_inputs_dropped", 0)


def test_registered_with_raw_folders():
    specs = sources()
    for name, folder in SOURCES.items():
        assert specs[name].raw_folder == folder
    assert specs["mcqa_jsonl"].generic


def test_medqa_and_medmcqa_test_only(converted):
    en = converted["task57"]
    assert set(en) == {"test"} and len(en["test"].instances) == 1273
    first = by_id(en["test"])["0"]
    assert first.input.startswith("Question: A junior orthopaedic surgery resident")
    assert "\nOptions:\nA. Disclose the error to the patient" in first.input
    assert first.target == "The right answer is B: Tell the attending that he cannot fail to disclose this mistake."
    zh = converted["task58"]["test"]
    # 3426 questions, of which 6 repeat an earlier question word for word (same options and answer)
    assert len(zh.instances) + dropped(zh) == 3426 and dropped(zh) == 6
    assert by_id(zh)["0"].target == "The right answer is D: 24小时内."
    assert len(converted["task122"]["test"].instances) == 4183


def test_igakuqa_skips_numeric_and_image_items(converted):
    t = converted["task59"]
    meta = t["test"].meta["medsbench"]
    assert meta["skipped_numeric_entry"] == 12 and meta["skipped_needs_image"] == 529
    n_test, n_train = len(t["test"].instances), len(t["train"].instances)
    assert n_test + n_train == 2000 - 12 - 529  # no item is both numeric and image-only
    assert 0.07 < n_test / (n_test + n_train) < 0.13  # hash split 9:1
    items = {**by_id(t["train"]), **by_id(t["test"])}
    assert items["112A1"].input.splitlines()[0] == "Question: 高アンモニア血症をきたす疾患はどれか。"
    assert items["112A1"].target == "The right answer is E: オルニチントランスカルバミラーゼ欠損症."
    multi = [i for i in items.values() if i.target.startswith("The right answer is") and "," in i.target.split(":")[0]]
    assert len(multi) == 180 + 43  # 2- and 3-answer text-only questions
    assert "one or more options" in t["test"].definition


def test_frenchmedmcqa_multi_answer(converted):
    t = converted["task60"]
    assert len(t["test"].instances) == 622
    assert len(t["train"].instances) + dropped(t["train"]) == 2171 + 312
    raw = json.loads((RAW / "frenchmedmcqa" / "test.json").read_text(encoding="utf-8"))
    multi = next(q for q in raw if len(q["correct_answers"]) > 1)
    inst = by_id(t["test"])[multi["id"]]
    letters = ", ".join(c.upper() for c in sorted(multi["correct_answers"]))
    assert inst.target.startswith(f"The right answer is {letters}: ")
    assert multi["answers"][sorted(multi["correct_answers"])[0]].rstrip(".") in inst.target
    assert sum("," in i.target.split(":")[0] for i in t["test"].instances) == 301


def test_rumeddanet_two_options(converted):
    t = converted["task61"]
    assert len(t["test"].instances) == 256 and len(t["train"].instances) == 1052 + 256
    first = t["test"].instances[0]
    assert first.input.startswith("Context: Противокашлевое неопиоидное средство")
    assert first.input.endswith("\nOptions:\nA. да\nB. нет")
    golds = collections.Counter(i.target for i in t["test"].instances)
    assert golds == {"The right answer is A: да.": 128, "The right answer is B: нет.": 128}


def test_headqa(converted):
    t = converted["task129"]
    assert len(t["test"].instances) + dropped(t["test"]) == 2742
    assert len(t["train"].instances) + dropped(t["train"]) == 2657 + 1366
    inst = by_id(t["test"])["Cuaderno_2016_1_B-1"]
    assert inst.input == (
        "Question: Forma fibras extracelulares con gran resistencia a la tensión:\nOptions:\n"
        "A. Fibronectina.\nB. Colágeno.\nC. Integrinas.\nD. Proteoglucanos."
    )
    assert inst.target == "The right answer is B: Colágeno."
    assert t["test"].meta["medsbench"]["questions_with_missing_image"]["test"] == 67


def test_pubmedqa_mcqa_and_verification(converted):
    t = converted["task123"]
    gt = json.loads((RAW / "pubmedqa" / "test_ground_truth.json").read_text())
    assert {i.id for i in t["test"].instances} == set(gt)
    assert len(t["train"].instances) == 500
    labels = collections.Counter(i.target for s in t.values() for i in s.instances)
    assert labels == {"The right answer is yes.": 552, "The right answer is no.": 338, "The right answer is maybe.": 110}
    some = next(iter(gt))
    assert by_id(t["test"])[some].target == f"The right answer is {gt[some]}."
    inst = by_id(t["test"])["21645374"]  # in the official test split
    assert "Question: Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?" in inst.input
    assert inst.input.startswith("Context: BACKGROUND: Programmed cell death (PCD)")

    v = converted["task12"]
    assert {i.id for i in v["test"].instances} == set(gt)
    ori = json.loads((RAW / "pubmedqa" / "ori_pqal.json").read_text())
    for _split, task in v.items():
        pool = {" ".join(ori[i.id]["LONG_ANSWER"].split()) for i in task.instances}
        golds = collections.Counter(i.target for i in task.instances)
        assert set(golds) == {"yes", "no"} and 200 < golds["yes"] < 300
        for inst in task.instances:
            answer = inst.input.rsplit("\nAnswer: ", 1)[1]
            own = " ".join(ori[inst.id]["LONG_ANSWER"].split())
            assert (answer == own) == (inst.target == "yes")
            assert answer in pool  # distractors come from the same split


def test_meqsum_hash_split(converted):
    t = converted["task114"]
    n_test, n_train = len(t["test"].instances), len(t["train"].instances)
    assert n_test + n_train == 1000 and 70 <= n_test <= 130
    assert t["test"].meta["medsbench"]["split_method"].startswith("no official split")
    inst = by_id(t["train"]).get("1-131188152.xml.txt") or by_id(t["test"])["1-131188152.xml.txt"]
    assert inst.input.startswith("SUBJECT: who and where to get cetirizine - D\nMESSAGE: I need/want to know")
    assert inst.target == "Who manufactures cetirizine?"


def test_hoc_labels_match_source_counts(converted):
    from medsbench.sources.converters.hoc import HALLMARKS, NO_HALLMARK

    t = converted["task106"]
    items = [i for s in t.values() for i in s.instances]
    assert len(items) == 1852
    # SOURCE.md counts 1582 labelled abstracts, including two whose only label is the literal NULL
    assert sum(i.target == NO_HALLMARK for i in items) == 1852 - 1582 + 2
    assert not any(h in NO_HALLMARK.lower() for h in HALLMARKS)  # the sentinel never reads as a label
    counts = collections.Counter(h for i in items for h in HALLMARKS if h in i.target)
    assert counts == {
        "sustaining proliferative signaling": 462, "resisting cell death": 429, "genomic instability and mutation": 333,
        "activating invasion and metastasis": 291, "tumor promoting inflammation": 240, "evading growth suppressors": 240,
        "inducing angiogenesis": 143, "enabling replicative immortality": 115, "avoiding immune destruction": 108,
        "cellular energetics": 105,
    }
    # every hallmark occurs in the test split, so gold-as-prediction can reach macro F1 100
    assert {h for i in t["test"].instances for h in HALLMARKS if h in i.target} == set(HALLMARKS)
    first = by_id(t["test"]).get("11724768") or by_id(t["train"])["11724768"]
    assert first.target == "sustaining proliferative signaling"
    assert first.input.startswith("Ghrelin was identified in the stomach")


def test_ebm_pico_phrases(converted):
    gold_pmids = set(json.loads((RAW / "ebm_nlp_pico" / "test.json").read_text()))
    seen: set[str] = set()
    for task_id in ("task1", "task2", "task3"):
        t = converted[task_id]
        assert t["test"].instances and t["train"].instances
        for _split, task in t.items():
            for inst in task.instances:
                for phrase in inst.target.split(", "):
                    assert phrase and phrase in inst.input, (task_id, inst.id, phrase)
        seen |= {i.id.rsplit("-", 1)[0] for i in t["test"].instances}
        assert all(i.id.startswith("dev") for i in t["train"].instances)
    assert seen <= gold_pmids and len(seen) > 180
    title = "23549581-0"
    assert by_id(converted["task1"]["test"])[title].target == "patients with chemotherapy-induced painful peripheral neuropathy"
    assert by_id(converted["task2"]["test"])[title].target == "duloxetine"
    assert by_id(converted["task3"]["test"])[title].target == "Effect, pain function and quality of life"
    assert by_id(converted["task3"]["test"])[title].input.startswith("Effect of duloxetine on pain function")


def test_train_only_medsins_tasks(converted):
    qa, summ = converted["task62"], converted["task1001"]
    assert set(qa) == {"train"} and len(qa["train"].instances) == 104
    inst = by_id(qa["train"])["TQ1"]
    assert inst.input == (
        "Subject: Noonan syndrome\nMessage: What are the references with noonan syndrome and polycystic renal disease"
    )
    assert len(inst.output) == 3 and inst.output[1].startswith("10% of patients with Noonan syndrome")
    assert by_id(summ["train"])["TQ1"].target == "What is the relationship between Noonan syndrome and polycystic renal disease?"
    assert len(converted["task65"]["train"].instances) == 651  # 690 rows, 651 distinct questions
    abbr = converted["task1002"]["train"]
    assert 3700 < len(abbr.instances) < 4438
    assert by_id(abbr)["17p"].target == "17p stands for short arm of chromosome 17."
    icd = by_id(converted["task115"]["train"])
    assert len(icd) == 98262
    assert icd["S02.2XXA"].target == "Fracture of nasal bones, initial encounter for closed fracture"
    for task_id in ("task62", "task1001", "task65", "task1002", "task115"):
        t = converted[task_id]["train"]
        assert t.meta["medsbench"]["bench_category"] is None and t.categories


def test_train_and_test_never_share_an_input(converted):
    both = [tid for tid, splits in converted.items() if {"train", "test"} <= set(splits)]
    assert len(both) >= 11
    for tid in both:
        test_inputs = {i.input for i in converted[tid]["test"].instances}
        assert not test_inputs & {i.input for i in converted[tid]["train"].instances}, tid


def test_files_pass_validation(converted):
    from medsbench.tasks import validate

    for _tid, splits in converted.items():
        for task in splits.values():
            errors = [p for p in validate.validate_file(task.path) if p.level == "error"]
            assert not errors, errors[:3]


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("medqa_usmle", "meqsum"), ("medqa_mcmle_zh", "medqa_usmle"), ("medmcqa", "hoc"), ("igakuqa", "meqsum"),
        ("frenchmedmcqa", "rumeddanet"), ("rumeddanet", "frenchmedmcqa"), ("headqa", "medmcqa"),
        ("pubmedqa", "meqsum"), ("pubmedqa_verification", "hoc"), ("meqsum", "medqa_usmle"), ("hoc", "pubmedqa"),
        ("ebm_nlp_pico", "medmcqa"), ("liveqa_trec2017", "meqsum"), ("medicationqa", "meqsum"),
        ("medical_abbreviations", "icd10cm"), ("icd10cm", "medical_abbreviations"), ("mcqa_jsonl", "meqsum"),
    ],
)
def test_wrong_folder_names_the_path(name, wrong, tmp_path):
    folder = raw_dir(wrong)
    opts = {"task_id": "task900"} if name == "mcqa_jsonl" else {}
    with pytest.raises(MedsbenchError) as exc:
        convert(name, folder, tmp_path, **opts)
    assert str(folder) in str(exc.value)
    assert not list(tmp_path.iterdir())


def test_dataset_converters_reject_options(tmp_path):
    with pytest.raises(MedsbenchError, match="takes no options"):
        convert("medqa_usmle", raw_dir("medqa_usmle"), tmp_path, task_id="task3")


def _mcqa_line(pid, question, choices, answer) -> str:
    return json.dumps({"problem_id": pid, "problem_text": question, "choices": choices, "answer": answer}) + "\n"


def test_generic_mcqa_jsonl_on_a_new_corpus(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.jsonl").write_text(
        _mcqa_line(1, "Which vitamin deficiency causes scurvy?", ["A", "C", "D"], ["b"])
        + _mcqa_line(2, "Which organ makes insulin?", ["Liver", "Pancreas"], ["b"]),
        encoding="utf-8",
    )
    (raw / "test.jsonl").write_text(
        _mcqa_line(7, "Which organ makes insulin?", ["Liver", "Pancreas"], ["b"])
        + _mcqa_line(8, "Which are beta-lactams?", ["Penicillin", "Vancomycin", "Cefazolin"], ["a", "c"]),
        encoding="utf-8",
    )
    # called through the spec: registry.convert's own first parameter is also called ``name``
    paths = sources()["mcqa_jsonl"].fn(raw, tmp_path / "out", task_id="task900", name="My Exam")
    files = {read_task(p).split: read_task(p) for p in paths}
    assert sorted(p.name for p in paths) == ["task900_my_exam.test.json", "task900_my_exam.train.json"]
    assert [i.target for i in files["test"].instances] == [
        "The right answer is B: Pancreas.",
        "The right answer is A, C: Penicillin; Cefazolin.",
    ]
    # the repeated insulin question stays in test and leaves train
    assert [i.id for i in files["train"].instances] == ["train-1"]
    assert files["test"].meta["medsbench"]["task_id"] == "task900"
    assert files["test"].categories == ["Question Answering"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"problem_id": 1, "problem_text": "Q?", "choices": ["a", "b"], "answer": ["c"]}', "not one of the 2 option letters"),
        ('{"problem_id": 1, "problem_text": "Q?", "choices": ["a", "b"]}', "missing field 'answer'"),
        ('{"problem_id": 1, "problem_text": "Q?", "choices": ["a", "b"], "answer": ["a"]', "invalid JSON"),
    ],
)
def test_generic_mcqa_jsonl_bad_lines(tmp_path, line, message):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = _mcqa_line(0, "Fine?", ["yes", "no"], ["a"])
    (raw / "exam.jsonl").write_text(good + line + "\n", encoding="utf-8")
    with pytest.raises(MedsbenchError, match=message) as exc:
        convert("mcqa_jsonl", raw, tmp_path / "out", task_id="task900")
    assert exc.value.where == f"{raw / 'exam.jsonl'}:2"


def test_cli_convert(tmp_path, capsys):
    from typer.testing import CliRunner

    from medsbench.cli import app, main

    out = tmp_path / "tasks"
    result = CliRunner().invoke(app, ["data", "convert", "medqa_usmle", "--raw", str(raw_dir("medqa_usmle")), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["task57_medqa_en.test.json"]
    assert "task57_medqa_en.test.json" in result.output

    wrong = raw_dir("meqsum")
    with pytest.raises(SystemExit) as exc:
        main(["data", "convert", "medqa_usmle", "--raw", str(wrong), "--out", str(out)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(wrong) in err and "medqa_en_4op.jsonl" in err and "\n" not in err


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_hoc_unknown_hallmark_is_an_error(tmp_path):
    _write(tmp_path / "text" / "1.txt", "A sentence .\n")
    label = _write(tmp_path / "labels" / "1.txt", "<Growing wings--Feathers<")
    with pytest.raises(MedsbenchError, match="unknown hallmark 'growing wings'") as exc:
        convert("hoc", tmp_path, tmp_path / "out")
    assert exc.value.where == str(label)
