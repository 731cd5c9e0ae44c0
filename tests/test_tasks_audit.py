"""`medsbench data audit` (metrics.audit) and the label statistics of tasks.labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import raw_dir, run_cli

from medsbench.metrics.audit import audit_file, audit_paths, brackets_balanced
from medsbench.tasks.format import Instance, write_task
from medsbench.tasks.labels import is_degenerate, label_distribution, majority_baseline




# ------------------------------------------------------------------ tasks.labels


def test_majority_baseline_and_degenerate_flag():
    assert majority_baseline(["no"] * 4) == ("no", 100.0)
    assert majority_baseline(["a", "b", "b", "c"]) == ("b", 50.0)
    assert majority_baseline(["b", "a"]) == ("a", 50.0)  # ties: the label that sorts first, whatever the order
    assert majority_baseline([]) == (None, None)
    assert label_distribution(["x", "y", "x"]) == Counter({"x": 2, "y": 1})
    assert is_degenerate(["no"]) and is_degenerate(["no"] * 19 + ["yes"])  # a single label; 95%
    assert not is_degenerate(["no"] * 18 + ["yes"] * 2)  # 90%
    assert is_degenerate(["no"] * 18 + ["yes"] * 2, threshold=0.9)
    assert not is_degenerate([])


@pytest.mark.parametrize(
    ("category", "gold", "label"),
    [
        ("mcqa", "The right answer is B: aspirin.", "B"),
        ("mcqa", "The right answer is B, D: x; y.", "B, D"),
        ("mcqa", "C. Metformin", "C"),
        ("mcqa", "The right answer is Aspirin.", "B"),  # the option text, read from the input
        ("mcqa", "The right answer is none of these.", None),  # no letter: no label, counted as unreadable
        ("fact_verification", " No. ", "no"),
        ("text_classification", "resisting cell death, evading growth suppressors", "evading growth suppressors, resisting cell death"),
        ("text_classification", "None of the hallmarks of cancer.", "none"),
        ("diagnosis", "The diagnosis result is  Pneumonia.", "pneumonia"),
        ("treatment_planning", "The treatment planning is: surgery.", "surgery"),
        ("nli", "Entailment", "entailment"),
    ],
)
def test_the_audit_reads_golds_with_the_task_scorers_rule(category, gold, label):
    from medsbench.metrics import scorer_for_task

    scorer = scorer_for_task(category)
    assert scorer.label_of(gold, "Question: which?\nA. heparin\nB. aspirin\nC. metformin\nD. insulin") == label


# The answer frames of the released MedS-Bench MCQA test files (MMedBench subsets: task58 zh, task59 ja,
# task60 fr, task61 ru, task129 es; task57/task122 en), options on one tab-separated line as released.
LOCALIZED = {
    "task57": ("en", "Question: q\nOptions:\nA. x\nB. y\nC. z\nD. w", "The right answer is {l}: {t}."),
    "task58": ("zh", "问题: q\n选项: A: 2小时\tB: 4小时内\tC: 12小时内\tD: 24小时内", "正确答案是 {l}: {t}"),
    "task59": ("ja", "質問: q\nオプション: A: x\tB: y\tC: z\tD: w\tE: v", "正しい答えは {l}: {t} です"),
    "task60": ("fr", "Question: q\nOptions: A: x\tB: y\tC: z\tD: w\tE: v", "Les bonnes réponses est {l}: {t}"),
    "task61": ("ru", "Вопрос: q\nВарианты: A: да\tB: нет", "Правильные ответ: {l}: {t}"),
    "task129": ("es", "Pregunta: q\nOpciones: A: x\tB: y\tC: z\tD: w", "La respuesta correcta es: {l}: {t}."),
}


@pytest.mark.parametrize("task_id", sorted(LOCALIZED))
def test_localized_mcqa_golds_give_the_letter_distribution(tmp_path, task_id):
    """12 golds in the task's released answer frame, 6 x A and 6 x B, each with its own option text (and
    letters in lower case as some released golds have them): 2 labels, majority baseline 50%."""
    _, question, frame = LOCALIZED[task_id]
    golds = [frame.format(l=("A", "B", "a", "b")[i % 4], t=f"option text {i}") for i in range(12)]
    if task_id == "task60":  # FrenchMedMCQA has several right answers
        golds[0] = frame.format(l="A, B", t="x; y")
    path = tmp_path / f"{task_id}_released.test.json"
    write_task(path, _meta(task_id, "mcqa"), [Instance(str(i), question, [g]) for i, g in enumerate(golds)])
    result = audit_file(path)
    assert result.closed_label and result.unlabeled_golds == 0, result
    if task_id == "task60":
        assert result.label_distribution == {"B": 6, "A": 5, "A, B": 1}
    else:
        assert result.label_distribution == {"A": 6, "B": 6} and result.majority_baseline == 50.0
    # the same rule scores the gold copy 100 and gives the results' majority baseline
    from medsbench.metrics import score_predictions

    rows = [{"task_id": task_id, "id": str(i), "input": question, "reference": g, "output": g} for i, g in enumerate(golds)]
    t = score_predictions(rows, bootstrap=0).tasks[task_id]
    assert t.metrics["accuracy"] == 100.0 and t.parse_failure_rate == 0.0
    assert t.majority_baseline == result.majority_baseline


def test_brackets():
    assert brackets_balanced("IL-2 (interleukin-2) [x]") and brackets_balanced("plain")
    assert not brackets_balanced("(n = 3") and not brackets_balanced("digestive surgery]") and not brackets_balanced("(]")


# ------------------------------------------------------------------ synthetic files


def _meta(task_id: str, category: str) -> dict:
    return {"Definition": ["d"], "medsbench": {"task_id": task_id, "split": "test", "bench_category": category}}


def test_degenerate_file_reports_baseline_100_and_the_flag(tmp_path, capsys):
    """A SYNTHETIC fact-verification file whose golds are all "no" (as the released task12 is said to be)."""
    path = tmp_path / "task12_synthetic.test.json"
    write_task(path, _meta("task12", "fact_verification"), [Instance(str(i), f"passage {i}", ["no"]) for i in range(40)])
    result = audit_file(path)
    assert result.closed_label and result.degenerate
    assert (result.majority_label, result.majority_baseline) == ("no", 100.0)
    assert result.label_distribution == {"no": 40} and result.n_labels == 1
    code, out, err = run_cli(capsys, "data", "audit", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["tasks"][0]["majority_baseline"] == 100.0 and data["tasks"][0]["degenerate"] is True
    code, out, _ = run_cli(capsys, "data", "audit", str(path))
    assert code == 0 and "DEGENERATE" in out and "no (100.0)" in out


def test_repeated_input_with_different_golds(tmp_path):
    """SYNTHETIC justification task: one statement repeated with different golds (as the released task100 is said to)."""
    rows = [Instance(f"r{i}", "The same statement.", [f"justification {i}"]) for i in range(5)]
    rows += [Instance("s0", "Another statement.", ["same"]), Instance("s1", "Another  statement. ", ["same."])]
    rows += [Instance("u0", "Unique.", ["x"])]
    path = tmp_path / "task100_synthetic.test.json"
    write_task(path, _meta("task100", "fact_verification"), rows)
    result = audit_file(path)
    assert result.duplicate_inputs == 5  # 4 repeats of the first statement, 1 of the second
    assert result.conflicting_inputs == 1  # the second repeats with the same gold (after normalisation)
    assert result.worst_conflict is not None
    assert result.worst_conflict.model_dump() == {"id": "r0", "repeats": 5, "distinct_golds": 5}
    assert any("1 input(s) with different golds (worst: id r0, 5 copies, 5 golds)" in f for f in result.findings())


def test_tasks_scored_as_text_get_no_label_statistics(tmp_path):
    """task100 is filed under fact verification but its golds are justifications (BLEU/ROUGE in the catalog)."""
    path = tmp_path / "task100_synthetic.test.json"
    write_task(path, _meta("task100", "fact_verification"), [Instance(str(i), "s", ["no"]) for i in range(5)])
    result = audit_file(path)
    assert not result.closed_label and result.majority_baseline is None and not result.degenerate


def test_open_ended_golds_in_a_closed_category_get_no_baseline(tmp_path):
    path = tmp_path / "task999_synthetic.test.json"
    write_task(path, _meta("task999", "nli"), [Instance(str(i), f"premise {i}", [f"hypothesis {i}"]) for i in range(80)])
    result = audit_file(path)
    assert result.open_ended and not result.closed_label and result.majority_baseline is None and not result.degenerate


def test_spans_missing_fields_and_train_overlap(tmp_path):
    folder = tmp_path / "tasks"
    test = [Instance("0", "aspirin (ASA) helps", ["aspirin (ASA."]), Instance("1", "nothing", ["There is no related enetity."]),
            Instance("2", "shared sentence", ["x."]), {"id": "3", "input": "no gold"}, {"id": "4", "output": "no input"}]
    write_task(folder / "task126_bc5cdr_chem.test.json", _meta("task126", "ner"), test)
    train = [Instance("t0", "shared  sentence", ["x."]), Instance("t1", "train only", ["y."])]
    write_task(folder / "task126_bc5cdr_chem.train.json", {**_meta("task126", "ner"), "medsbench": {"task_id": "task126", "split": "train"}}, train)
    report = audit_paths([folder / "task126_bc5cdr_chem.test.json"])  # train found beside the test file
    (result,) = report.tasks
    assert (result.instances, result.missing_input, result.missing_output) == (5, 1, 1)
    assert (result.unbalanced_golds, result.unbalanced_example) == (1, "0")
    assert result.train_overlap == 1 and result.train_file.endswith("task126_bc5cdr_chem.train.json")
    assert result.train_overlap_pct == 25.0  # of the 4 test inputs
    # both splits given explicitly from different folders
    other = tmp_path / "elsewhere"
    other.mkdir()
    (folder / "task126_bc5cdr_chem.train.json").rename(other / "train.json")
    both = audit_paths([folder, other / "train.json"])
    assert {t.split: t.train_overlap for t in both.tasks} == {"test": 1, "train": None}


def test_unreadable_input_exits_1_but_findings_do_not(tmp_path, capsys):
    good = tmp_path / "task12_x.test.json"
    write_task(good, _meta("task12", "fact_verification"), [Instance("0", "p", ["no"])])
    bad = tmp_path / "task57_broken.test.json"
    bad.write_text('{"Definition": ["d"], "Instances": [')
    code, out, err = run_cli(capsys, "data", "audit", str(good), str(bad), str(tmp_path / "missing.json"), "--json")
    assert code == 1
    assert [t["file"] for t in json.loads(out)["tasks"]] == [str(good)]
    lines = sorted(err.strip().splitlines())
    assert len(lines) == 2
    assert lines[0].endswith("missing.json: no such file or folder")
    assert lines[1].endswith("task57_broken.test.json:1: invalid JSON: unexpected end of data")


# ------------------------------------------------------------------ real converted tasks


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    from medsbench.sources import convert

    out = tmp_path_factory.mktemp("audit-real") / "tasks"
    convert("pubmedqa", raw_dir("pubmedqa"), out)
    convert("medqa_usmle", raw_dir("medqa_usmle"), out)
    return out


def test_real_pubmedqa_distribution_matches_the_raw_ground_truth(converted):
    truth = json.loads((raw_dir("pubmedqa") / "test_ground_truth.json").read_text())
    expected = Counter(truth.values())
    (result,) = [t for t in audit_paths([converted]).tasks if t.task_id == "task123" and t.split == "test"]
    assert result.label_distribution == dict(expected)
    label, count = expected.most_common(1)[0]
    assert result.majority_label == label and result.majority_baseline == round(100 * count / len(truth), 2)
    assert not result.degenerate and result.instances == len(truth)
    assert result.train_overlap == 0  # the PQA-L test PMIDs are held out of train


def test_real_medqa_letters_match_the_raw_answers(converted):
    raw = raw_dir("medqa_usmle") / "medqa_en_4op.jsonl"
    answers = Counter(
        ", ".join(sorted(a.upper() for a in json.loads(line)["answer"])) for line in raw.read_text().splitlines() if line.strip()
    )
    (result,) = [t for t in audit_paths([converted]).tasks if t.task_id == "task57"]
    assert result.label_distribution == dict(answers)
    assert 20 < result.majority_baseline < 35  # four options, roughly balanced
