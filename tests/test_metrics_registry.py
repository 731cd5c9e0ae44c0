"""Scorer registry, failed items, majority baselines, fixed label sets, lead-ins, the score CLI,
and known-answer tests of the paired significance test."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import RAW
from medsbench.errors import MedsbenchError
from medsbench.metrics import (
    Scorer,
    primary_metric,
    register_scorer,
    score_predictions,
    scorer_for_task,
    all_scorers,
)
from medsbench.metrics import strict as S
from medsbench.metrics.registry import KINDS, metrics_from_sums
from medsbench.metrics.stats import paired_test
from medsbench.tasks.catalog import catalog
from medsbench.tasks.labels import DDXPLUS_CONDITIONS, SEER_OPTIONS


def row(task_id, gold, output=None, *, i=[0], **extra):  # noqa: B006 - a counter for unique ids
    i[0] += 1
    return {"task_id": task_id, "id": str(i[0]), "input": f"input {i[0]}", "reference": gold,
            "output": gold if output is None else output, **extra}


def _raw(name):
    path = RAW / name
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing")
        pytest.skip(f"{path} not present")
    return path


# ------------------------------------------------------------------------ registry


def test_every_catalog_task_names_a_registered_scorer():
    cat = catalog()
    names = all_scorers()
    for key, category in cat.categories.items():
        assert category.scorer in names, key
    families = {"mcqa": "accuracy", "summarization": "bleu_rouge", "information_extraction": "accuracy",
                "explanation": "bleu_rouge", "rationale": "bleu_rouge", "ner": "f1_micro", "diagnosis": "accuracy",
                "treatment_planning": "accuracy", "clinical_outcome": "accuracy", "text_classification": "f1_macro",
                "fact_verification": "accuracy", "nli": "accuracy"}
    for entry in cat.tasks.values():
        scorer = scorer_for_task(entry)
        assert scorer is not None and scorer.name in names
        # the metric family is the scorer's (the catalog no longer repeats it); text tasks filed under
        # closed-label categories (task100, task42) are the only ones whose family differs from the category's
        expected = "bleu_rouge" if entry.id in ("task100", "task42") else families[entry.category]
        assert scorer.family == expected and scorer.is_text == (expected == "bleu_rouge"), entry.id
    # the task-specific quirks are one scorer each, named by the catalog
    assert scorer_for_task("task123").name == "yesno_mcqa" and scorer_for_task("task57").name == "mcqa"
    assert scorer_for_task("task100").name == "ebms" and scorer_for_task("task12").name == "fact"
    assert scorer_for_task("task42").name == "text" and scorer_for_task("task41").name == "nli"
    assert scorer_for_task("task106").name == "hoc"


def test_one_primary_metric_per_family():
    expect = {"task57": "accuracy", "task123": "accuracy", "task1": "accuracy", "task130": "accuracy",
              "task131": "accuracy", "task117": "accuracy", "task12": "accuracy", "task41": "accuracy",
              "task126": "f1", "task106": "f1", "task83": "rougeL", "task18": "rougeL", "task52": "rougeL",
              "task100": "rougeL", "task42": "rougeL"}
    for tid, metric in expect.items():
        assert primary_metric(tid) == metric, tid
        assert primary_metric(catalog()[tid]) == metric
    assert primary_metric("summarization") == "rougeL" and primary_metric("ner") == "f1"
    assert primary_metric("CT") == "rougeL"
    with pytest.raises(MedsbenchError, match="unknown task id"):
        primary_metric("task99999")


def test_a_scorer_is_registered_once_and_checked():
    mcqa = all_scorers()["mcqa"]
    with pytest.raises(ValueError, match="already registered"):
        register_scorer(mcqa)
    with pytest.raises(ValueError, match="primary"):
        register_scorer(Scorer("bad_primary", "x", "accuracy", "accuracy", "rougeL", ("rougeL",),
                               reference=mcqa.reference, strict=mcqa.strict))
    assert "bad_primary" not in all_scorers()


def test_kinds_compute_from_sums():
    # accuracy: 3 of 4; micro F1: tp 2 fp 1 fn 1 -> P = R = F = 2/3
    assert metrics_from_sums("accuracy", np.array([3.0, 4.0]))["accuracy"] == pytest.approx(75.0)
    f = metrics_from_sums("f1_micro", np.array([2.0, 1.0, 1.0]))
    assert f["f1"] == pytest.approx(200 / 3) and f["precision"] == pytest.approx(200 / 3)
    assert set(KINDS) == {"accuracy", "accuracy_f1", "bleu_rouge", "f1_micro", "f1_macro"}


# ----------------------------------------------------------------- failed items


def test_failed_items_are_missing_not_zero():
    good = [row("task41", "entailment"), row("task41", "neutral"), row("task41", "neutral", "entailment")]
    failed = [row("task41", "neutral", None, error="connection refused") for _ in range(3)]
    for r in failed:
        r["output"] = None
    with_failures = score_predictions(good + failed, bootstrap=0)
    without = score_predictions(good, bootstrap=0)
    t = with_failures.tasks["task41"]
    assert t.n == 3 and t.n_failed == 3 and t.coverage == 0.5
    assert t.metrics == without.tasks["task41"].metrics == {"accuracy": pytest.approx(200 / 3, abs=1e-3)}
    assert t.reference == without.tasks["task41"].reference
    assert with_failures.n_failed == 3 and with_failures.n_rows == 6
    assert any("failed" in w and "--resume" in w for w in with_failures.warnings)


def test_a_task_whose_items_all_failed_has_no_metrics():
    rows = [row("task41", "entailment")] + [dict(row("task12", "yes"), output=None, error="timeout") for _ in range(2)]
    res = score_predictions(rows, bootstrap=50)
    t = res.tasks["task12"]
    assert t.n == 0 and t.n_failed == 2 and t.coverage == 0.0
    assert t.metrics == {} and t.reference == {} and t.ci == {} and t.empty_rate is None
    fact = res.categories["fact_verification"]
    assert fact.n_tasks == 0 and fact.tasks == [] and fact.missing_tasks == ["task12"] and fact.metrics == {}
    assert any("task12" in w and "no metrics" in w for w in res.warnings)


# -------------------------------------------------------- majority baseline / degenerate


def test_majority_baseline_and_degenerate_flag():
    rows = [row("task12", "no") for _ in range(20)]  # a released task12 is said to be all "no"
    t = score_predictions(rows, bootstrap=0).tasks["task12"]
    assert t.majority_baseline == 100.0 and t.majority_label == "no" and t.degenerate
    rows = [row("task57", g, input=MCQ) for g in ["The right answer is B: aspirin."] * 3 + ["The right answer is A: heparin."]]
    t = score_predictions(rows, bootstrap=0).tasks["task57"]
    assert t.majority_label == "B" and t.majority_baseline == 75.0 and not t.degenerate
    # failed items do not count in the baseline; open-ended tasks have none
    t = score_predictions([row("task126", "aspirin.")], bootstrap=0).tasks["task126"]
    assert t.majority_baseline is None and not t.degenerate


MCQ = "Question: Which drug?\nOptions:\nA. heparin\nB. aspirin\nC. warfarin\nD. insulin"


# ------------------------------------------------------------- fixed label sets


def test_diagnosis_and_treatment_use_the_fixed_vocabularies():
    # one item: with the golds of the file as the only labels, listing several conditions used to pass
    rows = [row("task130", "The diagnosis result is pneumonia.", "The diagnosis result is pneumonia, bronchitis or urti.")]
    t = score_predictions(rows, bootstrap=0).tasks["task130"]
    assert t.reference["accuracy"] == 100 and t.metrics["accuracy"] == 0
    rows = [row("task131", "The treatment planning is: Radiation after surgery",
                "Radiation after surgery or radiation prior to surgery")]
    assert score_predictions(rows, bootstrap=0).tasks["task131"].metrics["accuracy"] == 0
    rows = [row("task130", "The diagnosis result is possible nstemi / stemi.", "Possible NSTEMI / STEMI")]
    assert score_predictions(rows, bootstrap=0).tasks["task130"].metrics["accuracy"] == 100
    # a gold outside the vocabulary is reported, not silently scored against itself
    res = score_predictions([row("task130", "The diagnosis result is gout.")], bootstrap=0)
    assert res.tasks["task130"].metrics["accuracy"] == 0
    assert any("outside the diagnosis label set" in w for w in res.warnings)


def test_ddxplus_conditions_match_the_release_file():
    conditions = json.loads((_raw("ddxplus") / "release_conditions.json").read_text(encoding="utf-8"))
    assert len(conditions) == 49
    assert sorted(c["cond-name-eng"] for c in conditions.values()) == sorted(DDXPLUS_CONDITIONS)


def test_seer_options_match_the_converter():
    from medsbench.sources.converters.credentialed import seer

    assert tuple(seer.OPTIONS) == SEER_OPTIONS and len(SEER_OPTIONS) == 7


# --------------------------------------------------------------------- lead-ins


@pytest.mark.parametrize("output", ["Answer: aspirin, cisplatin.", "The entities are: aspirin, cisplatin.",
                                    "Here are the chemicals mentioned: aspirin, cisplatin", "**Entities:** aspirin; cisplatin"])
def test_ner_strips_lead_in(output):
    assert S.ner(output, "aspirin, cisplatin.") == ([2.0, 0.0, 0.0], True)


def test_ie_strips_lead_in_and_counts_non_answers_as_parse_failures():
    gold = "60 patients with type 2 diabetes"
    assert S.information_extraction(f"Answer: {gold}.", gold)[0][0] == 1.0
    assert S.information_extraction(f"The participants are: {gold}", gold)[0][0] == 1.0
    for non_answer in ("N/A", "Answer:", "Not mentioned.", "I cannot find the participants in this sentence."):
        stats, parsed = S.information_extraction(non_answer, gold)
        assert stats[0] == 0.0 and not parsed, non_answer
    assert S.information_extraction("patients", gold)[1]  # a wrong answer is still an answer
    assert S.ner("Answer:", "aspirin.") == ([0.0, 0.0, 1.0], False)
    rows = [row("task1", gold, "N/A"), row("task1", gold)]
    t = score_predictions(rows, bootstrap=0).tasks["task1"]
    assert t.parse_failure_rate == 0.5 and t.metrics["accuracy"] == 50


def test_reference_deviations_are_named_and_are_what_happens():
    """Each named deviation from the official scripts is a behaviour: ids stripped, numbers read as text,
    failed items missing (the official scripts would drop, crash on, or score them as wrong)."""
    rows = [{**row("task41", "entailment"), "task_id": " task41 "},  # the official scripts compare ids exactly
            {**row("task41", "entailment"), "output": None, "error": "HTTP 500"},  # failed: missing, not wrong
            {"task_id": "task16", "id": "n", "input": "claim", "output": 1, "reference": 1}]  # a numeric CSV column
    res = score_predictions(rows, bootstrap=0)
    assert res.tasks["task41"].n == 1 and res.tasks["task41"].n_failed == 1 and res.tasks["task41"].metrics["accuracy"] == 100
    assert res.tasks["task16"].n == 1 and res.tasks["task16"].metrics["accuracy"] == 100  # "1" vs "1", as text
    dev = " | ".join(res.reference_deviations)
    assert "task ids are stripped" in dev and "all-numeric" in dev and "failed items" in dev


# ------------------------------------------------------------------------ CLI


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "medsbench.cli", *args], capture_output=True, text=True, timeout=300)


def test_score_cli_unknown_ids(tmp_path):
    only_unknown = _write(tmp_path / "unknown.jsonl", [row("task99999", "x"), row("mytask", "y")])
    proc = _cli("score", str(only_unknown), "--bootstrap", "0")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nothing to score" in lines[0], proc.stderr
    assert "task99999" in lines[0] and "mytask" in lines[0]
    assert not (tmp_path / "results.json").exists()
    some = _write(tmp_path / "some.jsonl", [row("task99999", "x"), row("task41", "entailment")])
    proc = _cli("score", str(some), "--bootstrap", "0", "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "task99999" in proc.stdout and "not in the catalog" in proc.stdout
    assert json.loads((tmp_path / "r.json").read_text())["tasks"]["task41"]["n"] == 1


# ------------------------------------------------------ paired significance test


def _acc(sums):
    return metrics_from_sums("accuracy", sums)


def _items(correct):
    return np.array([[float(c), 1.0] for c in correct])


def _exact_p(a, b):
    """Exact two-sided permutation p-value of the accuracy difference (all 2^n swaps)."""
    d = np.array(a, float) - np.array(b, float)
    observed = abs(d.sum())
    hits = sum(abs(np.dot(signs, d)) >= observed - 1e-12 for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_paired_test_identical_runs_show_no_difference():
    a = _items([1, 0, 1, 1, 0, 1, 0, 0])
    for method in ("permutation", "bootstrap"):
        res = paired_test(a, a.copy(), _acc, resamples=500, seed=1, method=method)["accuracy"]
        assert res["delta"] == 0 and res["p_value"] == 1.0 and res["ci"] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("a", "b", "hand_p"),
    [
        # two discordant items, both for A: sums over sign flips {2, 0, 0, -2}, |S| >= 2 in 2 of 4
        ([1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], 0.5),
        # five discordant, all for A: only all-plus or all-minus reach |S| = 5: 2 / 32
        ([1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0], 0.0625),
        # four for A, one for B: S = 3; |S| >= 3 for S in {5, 3, -3, -5}: (1 + 5 + 5 + 1) / 32
        ([1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 1, 1], 0.375),
    ],
)
def test_paired_permutation_p_matches_the_exact_value(a, b, hand_p):
    assert _exact_p(a, b) == pytest.approx(hand_p)  # the hand computation is the exact test
    res = paired_test(_items(a), _items(b), _acc, resamples=40_000, seed=7)["accuracy"]
    assert res["delta"] == pytest.approx(100 * (sum(a) - sum(b)) / len(a))
    assert res["p_value"] == pytest.approx(hand_p, abs=0.01)  # Monte Carlo error at 40k draws < 0.003


def test_paired_test_is_sign_symmetric():
    rng = np.random.default_rng(3)
    a = _items(rng.random(40) < 0.6)
    b = _items(rng.random(40) < 0.5)
    for method in ("permutation", "bootstrap"):
        ab = paired_test(a, b, _acc, resamples=2000, seed=11, method=method)["accuracy"]
        ba = paired_test(b, a, _acc, resamples=2000, seed=11, method=method)["accuracy"]
        assert ab["delta"] == pytest.approx(-ba["delta"])
        assert ab["p_value"] == pytest.approx(ba["p_value"])
        assert ab["ci"][0] == pytest.approx(-ba["ci"][1]) and ab["ci"][1] == pytest.approx(-ba["ci"][0])


def test_results_carry_the_given_protocol_and_round_trip(tmp_path):
    from medsbench.metrics import write_results
    from medsbench.metrics.score import RunProtocol
    from medsbench.records.results import Results

    run = tmp_path / "run"
    run.mkdir()
    pred = _write(run / "predictions.jsonl", [row("task41", "entailment"), row("task41", "neutral", "entailment")])
    res = score_predictions(pred, bootstrap=20, protocol=RunProtocol("official", ("demos are drawn from the test file",)))
    assert res.protocol == "official" and res.protocol_deviations == ["demos are drawn from the test file"]
    assert res.inputs[0].path == str(pred) and len(res.inputs[0].sha256) == 64
    back = Results.load(write_results(res, run / "results.json"))
    assert back == res
    assert score_predictions([row("task41", "entailment")], bootstrap=0).protocol is None


def test_an_entry_built_outside_the_catalog_gets_its_categorys_scorer():
    import dataclasses

    entry = dataclasses.replace(catalog()["task130"], id="task9001", scorer=None, category="nli")
    assert scorer_for_task(entry).name == "nli" and primary_metric(entry) == "accuracy"


def test_primary_metric_of_a_category_object_and_dict_rows_with_bookkeeping():
    cat = catalog()
    assert primary_metric(cat.categories["summarization"]) == "rougeL"
    assert primary_metric(cat.categories["text_classification"]) == "f1"
    # in-memory rows may carry a caller's own keys; files are still read strictly
    res = score_predictions([dict(row("task41", "entailment"), index=0, where="row 1")], bootstrap=0)
    assert res.tasks["task41"].n == 1
