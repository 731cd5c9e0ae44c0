"""Differential test: ``reference`` scores equal the official MedS-Bench metric scripts.

The official ``Metrics/*.py`` (../shared/reference/meds_ins_official, run unmodified in a
subprocess by tests/official_metrics_driver.py, with real nltk/rouge/jieba/janome/sklearn/pandas 2)
and ``medsbench.metrics.score_predictions`` score the same generated prediction CSVs, every
category, to 1e-9. Outputs include exact golds, paraphrases, wrong answers, gaming outputs (every
label listed) and NaN-like cells. Each hostile output is also tried alone beside the ordinary rows:
where the official script crashes on it, our documented behaviour (``reference_deviations``) is
asserted instead.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, missing, write_punkt_tab
from medsbench.metrics import score_predictions
from medsbench.tasks.labels import HALLMARKS

OFFICIAL = REPO.parent / "shared" / "reference" / "meds_ins_official" / "Metrics"
TOL = 1e-9

def _official_requirements() -> None:
    """scikit-learn and pandas 2 (utils.csv_to_list indexes rows by position): the test extra has both."""
    try:
        import pandas
        import sklearn  # noqa: F401
    except ImportError as exc:
        missing(f"the official scripts need {exc.name} (pip install 'medsbench[test]')")
    if int(pandas.__version__.split(".")[0]) >= 3:
        missing("the official scripts need pandas 2.x (pip install 'medsbench[test]')")

EN = ["The patient was given aspirin for chest pain.", "Metformin lowers blood glucose in type 2 diabetes.",
      "A chest CT showed no pulmonary embolism.", "Hypertension is treated with lifestyle changes and drugs.",
      "The MRI of the brain is normal for age."]
LANG_TEXT = {
    "zh": ["患者男性，65岁，因胸痛3小时入院。", "诊断为急性心肌梗死，给予阿司匹林。", "血压控制良好。"],
    "ja": ["患者は65歳男性で、胸痛のため入院した。", "急性心筋梗塞と診断された。", "血圧は良好に管理されている。"],
    "fr": ["Le patient a reçu de l'aspirine.", "L'IRM cérébrale est normale.", "La tension est contrôlée."],
    "ru": ["Пациенту дали аспирин.", "МРТ головного мозга в норме.", "Давление под контролем."],
    "es": ["El paciente recibió aspirina.", "La resonancia cerebral es normal.", "La presión está controlada."],
    "en": EN,
}
NA_LIKE = ["", "nan", "N/A"]  # pandas reads each as NaN
ODD = [" ", ".", "0"]


def _text_rows(rng, tasks, lang_of=lambda t: "en"):
    rows = []
    for t in tasks:
        texts = LANG_TEXT[lang_of(t)]
        for i, gold in enumerate(texts):
            outs = [gold, texts[(i + 1) % len(texts)], gold[: len(gold) // 2], gold + " " + texts[0], rng.choice(texts)]
            rows += [(t, f"in {t} {i}", gold, o) for o in outs]
    return rows


def _mcqa_rows(rng, tasks):
    rows = []
    opts = ["A. aspirin", "B. heparin", "C. warfarin", "D. statin", "E. none of the above"]
    for t in tasks:
        if t == "task123":
            golds = ["yes", "no", "maybe", "Yes.", "no, because"]
            outs = ["yes", "no", "maybe", "The right answer is yes", "No.", "n", "yes no maybe", "Y"]
        else:
            golds = opts + ["The right answer is B. heparin"]
            outs = ["A", "b", "The right answer is C. warfarin", "D. statin", "E", "A B C D", "answer: B", "(B)"]
        for g in golds:
            for o in rng.sample(outs, 4):
                rows.append((t, f"q {t}", g, o))
    return rows


def _label_rows(rng, tasks, labels, prefix="", all_join=", "):
    rows = []
    for t in tasks:
        for g in labels:
            gold = f"{prefix}{g}."
            outs = [g, g.upper(), f"{prefix}{g}", rng.choice(labels), all_join.join(labels), f"It is not {g}"]
            rows += [(t, f"x {t}", gold, o) for o in outs]
    return rows


def _ner_rows(rng, tasks):
    ents = ["aspirin", "heparin", "breast cancer", "mouse", "cisplatin"]
    rows = []
    for t in tasks:
        for k in range(1, 4):
            gold_ents = rng.sample(ents, k)
            gold = ", ".join(gold_ents) + "."
            outs = [gold, ", ".join(gold_ents), ", ".join(reversed(gold_ents)) + ".", "There is no related enetity.",
                    ", ".join(ents) + ".", gold_ents[0] + "."]
            rows += [(t, f"s {t}", gold, o) for o in outs]
        rows.append((t, "s none", "There is no related enetity.", "There is no related enetity."))
        rows.append((t, "s none", "There is no related enetity.", "aspirin."))
    return rows


def _ie_rows(rng, tasks):
    rows = []
    vals = ["65 patients with asthma", "aspirin 100 mg", "mortality at 30 days", "\"quoted\" dose", "it's 5 mg"]
    for t in tasks:
        for v in vals:
            outs = [v, v.upper(), f"Answer: {v}.", rng.choice(vals), "; ".join(vals), "unknown"]
            rows += [(t, f"abstract {t}", v, o) for o in outs]
    return rows


def _hoc_rows(rng):
    rows = []
    for i in range(12):
        gold_labels = rng.sample(HALLMARKS, rng.randrange(1, 3))
        gold = ", ".join(gold_labels)
        outs = [gold, gold_labels[0], ", ".join(HALLMARKS), rng.choice(HALLMARKS), "none of them"]
        rows += [("task106", f"abstract {i}", gold, o) for o in outs]
    # an abstract with no hallmark, as the converter writes its gold (the official rule finds no class in it)
    rows.append(("task106", "abstract none", "None of the hallmarks of cancer.", "resisting cell death"))
    rows.append(("task106", "abstract none", "None of the hallmarks of cancer.", "None of the hallmarks of cancer."))
    return rows


RATIONALE_LANG = {"task51": "zh", "task52": "en", "task53": "fr", "task54": "ja", "task55": "ru", "task56": "es"}
SUMM_MAIN = ["task78", "task114", "task112", "task110"]
SUMM_CT = ["task83", "task84", "task85", "task86", "task87", "task88"]
SUMM_MRI = ["task89", "task90", "task91", "task92", "task93", "task94"]

# name -> (script, function, kwargs, rows(rng), result reader)
CASES = {
    "mcqa": ("MCQA", "evaluate_mcqa", {"task_ids": ["task57", "task58", "task59", "task122", "task123", "task129"]},
             lambda rng: _mcqa_rows(rng, ["task57", "task58", "task59", "task122", "task123", "task129"]), "acc"),
    "information_extraction": ("InformationExtraction", "evaluate_information_extraction",
                               {"task_ids": ["task1", "task2", "task3", "task29", "task74"]},
                               lambda rng: _ie_rows(rng, ["task1", "task2", "task3", "task29", "task74"]), "acc"),
    "ner": ("NamedEntityRecognition", "evaluate_hard_ner", {"task_ids": ["task125", "task126", "task127", "task128"]},
            lambda rng: _ner_rows(rng, ["task125", "task126", "task127", "task128"]), "f1"),
    "diagnosis": ("Diagnosis", "evaluate_diagnosis", {},
                  lambda rng: _label_rows(rng, ["task130"], ["pneumonia", "influenza", "GERD", "Bronchitis"],
                                          prefix="The diagnosis result is "), "diag"),
    "treatment_planning": ("TreatmentPlanning", "evaluate_treatment_planning", {"task_ids": ["task131"]},
                           lambda rng: _label_rows(rng, ["task131"], ["surgery", "radiation", "chemotherapy", "surgery and radiation"],
                                                   prefix="The treatment planning is: "), "acc"),
    "clinical_outcome": ("ClinicalOutcomePrediction", "evaluate_clinical_outcome",
                         {"task_ids": ["task117", "task118", "task119"]},
                         lambda rng: _label_rows(rng, ["task117", "task118", "task119"], ["true", "false", "True"]), "acc"),
    "nli": ("NatureLanguageInference", "evaluate_nli", {"task_ids": ["task41"]},
            lambda rng: _label_rows(rng, ["task41"], ["entailment", "contradiction", "neutral"]), "acc"),
    "nli_generation": ("NatureLanguageInference", "evaluate_nli_gen", {"task_ids": ["task42"]},
                       lambda rng: _text_rows(rng, ["task42"]), "text"),
    "fact_verification": ("FactVerification", "evaluate_fact_verification",
                          {"task_ids_acc": ["task12", "task16"], "task_ids_bleu": ["task100"]},
                          lambda rng: _label_rows(rng, ["task12"], ["yes", "no", "maybe"])
                          + _label_rows(rng, ["task16"], ["true", "false", "mixture", "unproven"])
                          + _text_rows(rng, ["task100"]), "fact"),
    "text_classification": ("TextClassification", "evaluate_text_classification", {"task_ids": ["task106"]},
                            _hoc_rows, "hoc"),
    "summarization": ("TextSummarization", "evaluate_summarization", {"task_ids": SUMM_MAIN},
                      lambda rng: _text_rows(rng, SUMM_MAIN + SUMM_CT[:2] + SUMM_MRI[:2]), "summ"),
    "explanation": ("ConceptExplanation", "evaluate_explanation", {"task_ids": ["task18", "task46", "task50"]},
                    lambda rng: _text_rows(rng, ["task18", "task46", "task50"]), "text"),
    "rationale": ("Rationale", "evaluate_reasoning", {"task_ids": list(RATIONALE_LANG)},
                  lambda rng: _text_rows(rng, list(RATIONALE_LANG), RATIONALE_LANG.get), "text"),
}


def _official_numbers(kind: str, result, tasks: list[str]) -> dict[str, dict[str, float]]:
    """{task id: {our metric name: value}} from an official script's return value."""
    if kind == "fact":
        acc, bleu = result
        out = {t: {"accuracy": v} for t, v in acc["m"].items()}
        out.update({t: {"bleu1": v[0], "rougeL": v[1]} for t, v in bleu["m"].items()})
        return out
    if kind == "diag":
        return {"task130": {"accuracy": result["m"]}}
    if kind == "hoc":
        m = result["m"]
        return {"task106": {"precision": m["precision"], "recall": m["recall"], "f1": m["f1_score"]}} if m else {}
    per = result["m"]
    if kind == "acc":
        return {t: {"accuracy": v} for t, v in per.items()}
    if kind == "f1":
        return {t: {"f1": v} for t, v in per.items()}
    out = {t: {"bleu1": v[0], "rougeL": v[1]} for t, v in per.items() if v[0] != -1}
    return out


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["task_id", "input", "GT", "output"])
        w.writerows(rows)


@pytest.fixture(scope="module")
def nltk_data(tmp_path_factory) -> Path:
    """An nltk data folder with punkt_tab written from the Punkt parameters we ship (no download)."""
    return write_punkt_tab(tmp_path_factory.mktemp("nltk_data"))


def run_official(jobs: list[dict], workdir: Path, nltk_data: Path) -> list[dict]:
    env = dict(os.environ, NLTK_DATA=str(nltk_data), PYTHONHASHSEED="0")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "official_metrics_driver.py"), str(workdir)],
        input=json.dumps({"metrics_dir": str(OFFICIAL), "jobs": jobs}), capture_output=True, text=True, env=env, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ours(path: Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Our reference numbers, unrounded (results.json keeps 4 decimals), per task id and for the
    summarization script's pooled CT/MRI groups; and the documented reference deviations."""
    from medsbench.metrics.registry import POOLED_KIND, metrics_from_sums
    from medsbench.metrics.score import pooled_rows, score_items
    from medsbench.records import read_predictions

    per_task, _unknown, _warnings = score_items(read_predictions(path))
    out = {tid: {k: float(v) for k, v in it.reference_metrics(it.reference[it.ref_counted].sum(axis=0)).items()}
           for tid, it in per_task.items()}
    for name, (_members, ref_rows, _strict) in pooled_rows(per_task).items():
        out[name] = {k: float(v) for k, v in metrics_from_sums(POOLED_KIND, ref_rows.sum(axis=0)).items()}
    return out, list(score_predictions(path, bootstrap=0).reference_deviations)


@pytest.fixture(scope="module")
def official_runs(tmp_path_factory, nltk_data):
    """Every case: the ordinary file and, per hostile output, the ordinary rows plus that one row."""
    if not OFFICIAL.is_dir():
        missing(f"official scripts missing at {OFFICIAL}")
    _official_requirements()
    work = tmp_path_factory.mktemp("official")
    jobs, index = [], {}
    for name, (script, function, kwargs, make_rows, _kind) in CASES.items():
        rows = make_rows(random.Random(f"official:{name}"))
        base = work / f"{name}_m.csv"  # the scripts name the model after the last "_" part: "m"
        _write_csv(base, rows)
        index[(name, None)] = (len(jobs), base, rows)
        jobs.append({"script": script, "function": function, "kwargs": kwargs, "csv": str(base)})
        first_task = rows[0][0]
        gold = rows[0][2]
        for k, bad in enumerate(NA_LIKE + ODD):
            path = work / f"{name}{k}_m.csv"
            extra = [(first_task, "hostile", gold, bad)]
            _write_csv(path, rows + extra)
            index[(name, bad)] = (len(jobs), path, rows + extra)
            jobs.append({"script": script, "function": function, "kwargs": kwargs, "csv": str(path)})
    results = run_official(jobs, work, nltk_data)
    return {key: (results[i], path, rows) for key, (i, path, rows) in index.items()}


def _assert_equal(ours: dict, theirs: dict, where: str) -> None:
    for tid, metrics in theirs.items():
        assert tid in ours, f"{where}: {tid} scored by the official script but not by us"
        for key, value in metrics.items():
            assert abs(ours[tid][key] - value) <= TOL, f"{where}: {tid} {key}: ours {ours[tid][key]!r} official {value!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_equals_official_scripts(name, official_runs):
    kind = CASES[name][4]
    result, path, rows = official_runs[(name, None)]
    assert "result" in result, f"official {name} crashed on the ordinary rows: {result}"
    theirs = _official_numbers(kind, result["result"], [])
    assert theirs, f"official {name} scored nothing"
    ours, _dev = _ours(path)
    _assert_equal(ours, theirs, name)
    # not every item scores 100: the generated outputs really exercise the rules
    assert any(v < 100 - 1e-6 for m in theirs.values() for v in m.values())


CRASH_RULE = "items on which an official script would crash (NaN or blank output, empty text for Rouge) score 0"


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_outputs_match_or_are_documented(name, official_runs):
    """NaN-like, blank and odd outputs: equal to the official numbers, or, where the script crashes,
    the item scores 0 in reference mode (a documented deviation) and nothing else moves."""
    kind = CASES[name][4]
    base_result, _, base_rows = official_runs[(name, None)]
    base = _official_numbers(kind, base_result["result"], [])
    crashed = []
    for bad in NA_LIKE + ODD:
        result, path, rows = official_runs[(name, bad)]
        ours, deviations = _ours(path)
        if "result" in result:
            _assert_equal(ours, _official_numbers(kind, result["result"], []), f"{name} output {bad!r}")
            continue
        crashed.append(bad)
        assert CRASH_RULE in deviations
        tid = rows[-1][0]
        n = sum(1 for r in base_rows if r[0] == tid)
        for key, value in base[tid].items():
            if key in ("accuracy", "rougeL"):  # a mean over items: the crashing item adds a 0,
                expected = {value * n / (n + 1), value}  # or is skipped where the script skips it (documented)
                assert any(abs(ours[tid][key] - e) <= TOL for e in expected), (name, bad, key, ours[tid][key], value)
            elif key == "bleu1":  # the scripts crash in Rouge, after BLEU: BLEU-1 of the item is still counted
                assert value * n / (n + 1) - TOL <= ours[tid][key] <= (value * n + 100) / (n + 1) + TOL, (name, bad, ours[tid][key])
        for other, metrics in base.items():  # every other task is untouched
            if other != tid:
                _assert_equal(ours, {other: metrics}, f"{name} {bad!r} other task")
    # record which hostile outputs crash the official script (visible with -rA / on failure)
    print(f"{name}: official script crashed on {crashed}")
