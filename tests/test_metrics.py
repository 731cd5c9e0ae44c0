"""Scoring per category: official quirks (reference), honest parsing (strict), gold = 100, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsbench.errors import MedsbenchError
from medsbench.metrics import score_predictions, write_results
from medsbench.metrics import reference as R
from medsbench.metrics import strict as S
from medsbench.records import read_predictions
from medsbench.records.results import Results
from medsbench.tasks.labels import HALLMARKS

MCQ = "Question: A 45-year-old man has chest pain. Which drug?\nOptions:\nA. heparin\nB. aspirin\nC. warfarin\nD. insulin"


def row(task_id, gold, output=None, input="x", id=None):
    row.n += 1
    return {"task_id": task_id, "id": id or str(row.n), "input": input, "reference": gold,
            "output": gold if output is None else output}


row.n = 0


def score(rows, **kw):
    """results.json content as a plain dict (the record dumped as it is written)."""
    return score_predictions(rows, bootstrap=kw.pop("bootstrap", 0), **kw).model_dump(mode="json")


# realistic gold strings in the converters' formats, several per task
GOLD = {
    "task57": [("The right answer is B: aspirin.", MCQ), ("The right answer is A: heparin.", MCQ), ("The right answer is D: insulin.", MCQ)],
    "task60": [("The right answer is B, C: aspirin; warfarin.", MCQ), ("The right answer is A: heparin.", MCQ)],
    "task61": [("The right answer is A: да.", "Question: ...\nOptions:\nA. да\nB. нет"), ("The right answer is B: нет.", "Question: ...\nOptions:\nA. да\nB. нет")],
    "task123": [("The right answer is yes.", "q"), ("The right answer is no.", "q")],
    "task126": [("aspirin, cisplatin.", "x"), ("There is no related enetity.", "x"), ("5-fluorouracil.", "x")],
    "task127": [("breast cancer, cardiotoxicity.", "x")],
    "task106": [(", ".join(HALLMARKS[:5]), "x"), (", ".join(HALLMARKS[5:]), "x"), ("None of the hallmarks of cancer.", "x")],
    "task130": [("The diagnosis result is pneumonia.", "x"), ("The diagnosis result is bronchitis.", "x"), ("The diagnosis result is urti.", "x")],
    "task131": [("The treatment planning is: Radiation after surgery", "x"), ("The treatment planning is: Radiation prior to surgery", "x")],
    "task117": [("True", "x"), ("False", "x")],
    "task41": [("entailment", "x"), ("contradiction", "x"), ("neutral", "x")],
    "task12": [("yes", "x"), ("no", "x")],
    "task1": [("60 patients with type 2 diabetes", "x"), ("healthy volunteers, smokers", "x")],
    "task114": [("What are the side effects of metformin?", "x")],
    "task83": [("No acute intrathoracic process. Stable small nodule.", "x")],
    "task18": [("Aspirin is a drug. It reduces pain, fever, and inflammation.", "x")],
    "task52": [("The patient's symptoms suggest myocardial infarction; aspirin is first-line.", "x")],
    "task51": [("患者男性，65岁，因胸痛入院。诊断为急性心肌梗死。", "x")],
    "task54": [("患者は65歳男性で、胸痛のため入院した。", "x")],
    "task55": [("Пациенту следует назначить аспирин.", "x")],
    "task42": [("The patient has a history of heart failure.", "x")],
}


@pytest.mark.parametrize("task_id", sorted(GOLD))
def test_gold_as_prediction_scores_100_in_both_modes(task_id):
    res = score([row(task_id, g, input=i) for g, i in GOLD[task_id]], bootstrap=50)
    t = res["tasks"][task_id]
    for mode in ("metrics", "reference"):
        assert t[mode], mode
        for key, value in t[mode].items():
            assert value == pytest.approx(100, abs=1e-4), (mode, key)
    assert t["parse_failure_rate"] in (0.0, None) and t["empty_rate"] == 0.0


def test_official_quirks_keep_gold_below_100_in_reference_only():
    # MCQA counts only a-d (task123: y/n): option E and "maybe" never score, even as gold
    res = score([row("task60", "The right answer is E: text."), row("task123", "The right answer is maybe.")])
    assert res["tasks"]["task60"]["reference"]["accuracy"] == 0
    assert res["tasks"]["task123"]["reference"]["accuracy"] == 0
    assert res["tasks"]["task60"]["metrics"]["accuracy"] == 100
    assert res["tasks"]["task123"]["metrics"]["accuracy"] == 100
    # HoC: sklearn macro over all ten labels with zero_division=0: absent labels count as 0
    res = score([row("task106", HALLMARKS[0])])
    assert res["tasks"]["task106"]["reference"]["f1"] == pytest.approx(10.0)
    assert res["tasks"]["task106"]["metrics"]["f1"] == 100
    # task100: "." is removed from the gold only, so the gold itself loses BLEU
    res = score([row("task100", "The evidence supports aspirin.")])
    assert res["tasks"]["task100"]["reference"]["bleu1"] == pytest.approx(100 * 4 / 5)
    assert res["tasks"]["task100"]["metrics"]["bleu1"] == pytest.approx(100)


@pytest.mark.parametrize(
    ("task_id", "gold", "everything"),
    [
        ("task41", "entailment", "entailment, contradiction, neutral"),
        ("task130", "The diagnosis result is pneumonia.", "The diagnosis result is pneumonia, bronchitis, urti."),
        ("task131", "The treatment planning is: Radiation after surgery",
         "The treatment planning is: Radiation after surgery; Radiation prior to surgery"),
        ("task12", "yes", "yes / no"),
        ("task57", "The right answer is A: heparin.", "A, B, C, D"),
        ("task123", "The right answer is yes.", "yes, no, maybe"),
    ],
)
def test_listing_every_label_scores_100_reference_and_0_strict(task_id, gold, everything):
    golds = {"task130": ["The diagnosis result is bronchitis.", "The diagnosis result is urti."],
             "task131": ["The treatment planning is: Radiation prior to surgery"]}.get(task_id, [])
    rows = [row(task_id, gold, everything, input=MCQ)] + [row(task_id, g, g, input=MCQ) for g in golds]
    t = score(rows)["tasks"][task_id]
    n = len(rows)
    assert t["reference"]["accuracy"] == 100
    assert t["metrics"]["accuracy"] == pytest.approx(100 * (n - 1) / n)  # only the gaming item is wrong


def test_mcqa_reference_semantics():
    assert R.mcqa("The right answer is B: aspirin.", "The right answer is B: x.") == [1.0, 1.0]
    assert R.mcqa("b", "The right answer is B.") == [1.0, 1.0]
    assert R.mcqa("Aspirin (B) is right", "The right answer is B.") == [0.0, 1.0]  # first char 'a'
    assert R.mcqa("   ", "The right answer is B.") == [0.0, 1.0]  # the script would crash
    # NaN becomes "nan": on PubMedQA its 'n' matches a "no" gold (official behaviour)
    assert R.mcqa(None, "The right answer is no.", yes_no=True) == [1.0, 1.0]
    assert R.mcqa("", "The right answer is yes.", yes_no=True) == [0.0, 1.0]


def test_mcqa_strict_extraction_languages_and_forms():
    opts = S.parse_options(MCQ)
    assert opts["B"] == "aspirin"
    cases = {
        "The answer is (B).": {"B"}, "**B**": {"B"}, "B. aspirin": {"B"}, "(B) aspirin is first-line": {"B"},
        "答案是B": {"B"}, "正确答案：Ｂ": {"B"}, "正解はBです。": {"B"}, "La bonne réponse est B.": {"B"},
        "La respuesta correcta es B": {"B"}, "Правильный ответ: В": {"B"},  # Cyrillic Ve typed for B
        "I would give aspirin here.": {"B"}, "Either A or B": None, "The answer is A or B.": {"A", "B"},
        "A 45-year-old man should get aspirin.": {"B"},
    }
    for text, want in cases.items():
        assert S.mcqa_letters(text, opts) == want, text
    assert S.mcqa("The answer is B, C", "The right answer is B, C: a; b.", MCQ) == ([1.0, 1.0], True)
    assert S.mcqa("B", "The right answer is B, C: a; b.", MCQ) == ([0.0, 1.0], True)
    assert S.mcqa("I do not know", "The right answer is B: aspirin.", MCQ) == ([0.0, 1.0], False)


def test_closed_label_reference_and_strict():
    assert R.nli("Entailment.", "entailment") == [1.0, 1.0]
    assert R.fact("The claim is true\nyes", "yes") == [0.0, 1.0]  # only the first line counts
    assert R.outcome("true, not false", "True") == [0.0, 1.0]
    assert R.outcome("TRUE", "True") == [1.0, 1.0]
    assert R.diagnosis(None, "The diagnosis result is pneumonia.") == [0.0, 1.0]
    assert R.treatment("radiation after surgery", "The treatment planning is: Radiation after surgery") == [1.0, 1.0]
    labels = S.label_set(["entailment", "contradiction", "neutral", "Entailment."])
    assert labels == ("entailment", "contradiction", "neutral")
    assert S.closed_label("The relation is contradiction.", S.closed_gold("contradiction"), labels) == ([1.0, 1.0], True)
    assert S.closed_label("I cannot tell.", "neutral", labels) == ([0.0, 1.0], False)
    labels = S.label_set(["true", "false"])
    assert S.closed_label("False. The patient is stable.", S.closed_gold("False"), labels) == ([1.0, 1.0], True)
    assert S.closed_gold("The diagnosis result is Pneumonia.", S.DIAGNOSIS_PREFIX) == "pneumonia"
    assert S.closed_gold("The right answer is yes.", yes_no=True) == "yes"


def test_ner_reference_quirks_and_strict_parsing():
    # reference: every "." is removed first, so text[:-1] then chops a real character (both sides alike)
    assert R.ner_entities("aspirin, cisplatin.") == {"aspirin", "cisplati"}
    assert R.ner_entities("aspirin, cisplatin") == {"aspirin", "cisplati"}
    assert R.ner_entities("There is no related enetity.") == set()
    assert R.ner(None, "aspirin.") is None  # NaN outputs are skipped entirely
    assert S.ner_entities("aspirin, cisplatin") == {"aspirin", "cisplatin"}
    assert S.ner_entities("- Aspirin\n- 1,2-dichloroethane;  CISPLATIN .") == {"aspirin", "1,2-dichloroethane", "cisplatin"}
    assert S.ner_entities("There is no related entity.") == set()
    assert S.ner("aspirin, heparin.", "aspirin, cisplatin.") == ([1.0, 1.0, 1.0], True)
    # Species-800 (task128): SmolLM2's real output vs its gold (the entity's own period + the list's closing one);
    # the official rule (every "." removed) counts it right, and so must strict mode
    out, gold = "Streptococcus ursoris sp. nov.", "Streptococcus ursoris sp. nov.."
    assert R.ner(out, gold) == [1.0, 0.0, 0.0]
    assert S.ner(out, gold) == ([1.0, 0.0, 0.0], True)
    assert S.ner("- Streptococcus ursoris sp. nov\n- E. coli", "E. coli, Streptococcus ursoris sp. nov..") == ([2.0, 0.0, 0.0], True)
    res = score([row("task126", "aspirin, cisplatin.", "aspirin, heparin."), row("task126", "There is no related enetity.", "aspirin.")])
    t = res["tasks"]["task126"]
    assert t["reference"] == pytest.approx({"f1": 40.0, "precision": 100 / 3, "recall": 50.0}, abs=1e-3)
    assert t["metrics"]["f1"] == pytest.approx(40.0)


def test_hoc_macro_matches_hand_computation():
    gold = [HALLMARKS[0], f"{HALLMARKS[0]}, {HALLMARKS[1]}"]
    pred = [f"{HALLMARKS[0]}, {HALLMARKS[1]}", HALLMARKS[0]]
    res = score([row("task106", g, p) for g, p in zip(gold, pred)])
    t = res["tasks"]["task106"]
    # label0: tp2 -> p=r=f=1; label1: tp0 fp1 fn1 -> 0; 8 absent labels -> 0 (reference) / excluded (strict)
    assert t["reference"]["f1"] == pytest.approx(10.0)
    assert t["metrics"]["f1"] == pytest.approx(50.0)


def test_ie_reference_substring_and_strict_exact():
    gold = "60 patients with type 2 diabetes"
    copied = "In this trial, 60 patients with type 2 diabetes were randomised to metformin or placebo."
    res = score([row("task1", gold, copied)])
    assert res["tasks"]["task1"]["reference"]["accuracy"] == 100
    assert res["tasks"]["task1"]["metrics"]["accuracy"] == 0
    assert 0 < res["tasks"]["task1"]["metrics"]["f1"] < 100


def test_text_tasks_skip_rules():
    rows = [row("task52", "A rationale.", ""), row("task52", "A rationale.", "A rationale.")]
    t = score(rows)["tasks"]["task52"]
    assert t["n_reference"] == 1 and t["reference"]["rougeL"] == pytest.approx(100, abs=1e-4)  # empty skipped
    assert t["metrics"]["rougeL"] == pytest.approx(50, abs=1e-4)  # strict counts it as 0
    t = score([row("task100", "Evidence.", "   "), row("task100", "evidence", "evidence")])["tasks"]["task100"]
    assert t["n_reference"] == 2 and t["reference"]["bleu1"] == pytest.approx(50)


def test_results_record_and_categories(tmp_path):
    rows = [row(t, g, input=i) for t in ("task57", "task83", "task84", "task89", "task41") for g, i in GOLD.get(t, GOLD["task83"])]
    rows.append(row("task999", "x"))
    res = score(rows, bootstrap=200, seed=3)
    assert set(res) >= {"medsbench_version", "inputs", "tasks", "categories", "pooled", "unknown_task_ids"}
    assert res["unknown_task_ids"] == ["task999"]
    t = res["tasks"]["task57"]
    assert set(t) >= {"category", "language", "n", "metric", "metrics", "reference", "ci", "parse_failure_rate", "empty_rate"}
    assert res["categories"]["summarization"]["n_tasks"] == 3
    assert set(res["pooled"]) == {"CT", "MRI"} and res["pooled"]["CT"]["tasks"] == ["task83", "task84"]
    out = write_results(score_predictions(rows, bootstrap=0), tmp_path / "results.json")
    assert json.loads(out.read_text())["tasks"]["task57"]["metric"] == "accuracy"
    loaded = Results.load(out)  # the one reader takes what the one writer wrote
    assert loaded.tasks["task83"].scorer == "text" and loaded.categories["summarization"].metric == "rougeL"
    with pytest.raises(MedsbenchError, match="task999"):
        score(rows, strict_ids=True)


def test_bootstrap_ci_is_seeded_and_covers_the_estimate():
    rng = np.random.default_rng(1)
    rows = [row("task41", "entailment", "entailment" if rng.random() < 0.6 else "neutral") for _ in range(300)]
    a = score(rows, bootstrap=1000, seed=5)["tasks"]["task41"]
    b = score(rows, bootstrap=1000, seed=5)["tasks"]["task41"]
    assert a["ci"] == b["ci"]
    lo, hi = a["ci"]["accuracy"]
    assert lo < a["metrics"]["accuracy"] < hi and 5 < hi - lo < 20  # binomial sd ~2.8 points at n=300


# ----------------------------------------------------------------------- inputs


def test_csv_with_quoting_multiline_and_nan(tmp_path):
    p = tmp_path / "pred.csv"
    p.write_text(
        'task_id,input,GT,output\n'
        'task57,"Question: x\nOptions:\nA. a\nB. ""b""",The right answer is B: b.,"The right answer is B: ""b"".\nBecause."\n'
        "task41,premise,entailment,\n"
        "task41,premise 2,neutral,NA\n",
        encoding="utf-8",
    )
    rows = read_predictions(p)
    assert [r.output for r in rows][1:] == [None, "NA"]
    assert rows[0].input.endswith('B. "b"') and rows[0].where.endswith(":2")
    res = score_predictions(p, bootstrap=0).model_dump(mode="json")
    assert res["tasks"]["task57"]["reference"]["accuracy"] == 100
    assert res["tasks"]["task41"]["n"] == 2 and res["tasks"]["task41"]["empty_rate"] == 0.5
    assert any("missing" in w for w in res["warnings"])
    assert res["inputs"][0]["sha256"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"task_id,input,GT\ntask57,a,b\n", "missing output"),
        (b'task_id,input,GT,output\ntask57,"a,b,c\n', "quoting"),
        (b"task_id,input,GT,output\ntask57,a,b,c,d\n", "expected 4 fields"),
        (b"task_id,input,GT,output\ntask57,\xff\xfe,b,c\n", "not UTF-8"),
        (b"task_id,input,GT,output\n", "no predictions"),
    ],
)
def test_bad_csv_is_one_line_error(tmp_path, content, match):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(MedsbenchError, match=match) as err:
        read_predictions(p)
    assert "\n" not in str(err.value) and str(p) in str(err.value)


def test_bad_jsonl_names_the_line(tmp_path):
    p = tmp_path / "pred.jsonl"
    p.write_text('{"task_id": "task57", "output": "B", "reference": "The right answer is B."}\n{"task_id": "task57"\n')
    with pytest.raises(MedsbenchError, match=r"pred.jsonl:2"):
        read_predictions(p)
    p.write_text('{"task_id": "task57", "reference": "x"}\n')
    with pytest.raises(MedsbenchError, match=r":1: .*missing 'output'"):
        read_predictions(p)


def test_cli_score_and_compare(tmp_path):
    from typer.testing import CliRunner

    from medsbench.cli import app

    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    rng = np.random.default_rng(0)
    ra, rb = [], []
    for i in range(200):
        gold = "entailment" if i % 2 else "neutral"
        ra.append({"task_id": "task41", "id": str(i), "input": f"p{i}", "reference": gold, "output": gold if rng.random() < 0.9 else "contradiction"})
        rb.append({"task_id": "task41", "id": str(i), "input": f"p{i}", "reference": gold, "output": gold if rng.random() < 0.5 else "contradiction"})
    a.write_text("".join(json.dumps(r) + "\n" for r in ra))
    b.write_text("".join(json.dumps(r) + "\n" for r in rb))
    runner = CliRunner()
    res = runner.invoke(app, ["score", str(a), "--out", str(tmp_path / "r.json"), "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.json").read_text())["tasks"]["task41"]["n"] == 200
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "c.json"), "--resamples", "500"])
    assert res.exit_code == 0, res.output
    cmp = json.loads((tmp_path / "c.json").read_text())
    t = cmp["tasks"]["task41"]["strict"]["accuracy"]
    assert t["delta"] > 20 and t["ci"][0] > 0 and t["p_value"] < 0.01
    assert cmp["categories"]["nli"]["strict"]["accuracy"]["delta"] == pytest.approx(t["delta"])
