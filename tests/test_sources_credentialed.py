"""Credentialed-format converters on SYNTHETIC look-alike files (real column names, official layouts).

Every file written here is invented for the test: no real patient data is involved. Only the
DDXPlus condition/evidence definitions are the real public release files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import raw_dir

from medsbench.errors import MedsbenchError
from medsbench.sources import convert
from medsbench.sources.converters.credentialed.radiology import classify_exam, findings_impression
from medsbench.sources.registry import hash_split
from medsbench.tasks.format import read_task
from medsbench.tasks.validate import validate_file


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def check_pair(out: Path, entry_file: str) -> tuple[list, list]:
    test_path, train_path = out / f"{entry_file}.test.json", out / f"{entry_file}.train.json"
    for path in (test_path, train_path):
        assert [str(p) for p in validate_file(path) if p.level == "error"] == []
    test, train = read_task(test_path).instances, read_task(train_path).instances
    assert not {i.input for i in test} & {i.input for i in train}
    assert len({i.id for i in test + train}) == len(test) + len(train)
    return test, train


def cli_error(argv: list[str], capsys) -> str:
    from medsbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


# ---------------------------------------------------------------- MIMIC-IV-ED (synthetic master_dataset.csv)


def ed_row(i: int) -> dict:
    return {
        "subject_id": 10000000 + i // 2, "stay_id": 30000000 + i, "hadm_id": "" if i % 3 else 20000000 + i,
        "intime": "2150-01-01 10:00:00", "age": 17 if i == 5 else 30 + i % 50, "gender": "F" if i % 2 else "M",
        "n_ed_30d": i % 2, "n_ed_90d": i % 3, "n_ed_365d": i % 4, "n_hosp_30d": 0, "n_hosp_90d": 0, "n_hosp_365d": 1,
        "n_icu_30d": 0, "n_icu_90d": 0, "n_icu_365d": 0,
        "triage_temperature": "" if i == 7 else 97.0 + (i % 30) / 10, "triage_heartrate": 60 + i % 50,
        "triage_resprate": 16 + i % 5, "triage_o2sat": 90 + i % 10, "triage_sbp": 100 + i % 60,
        "triage_dbp": 60 + i % 30, "triage_pain": i % 11, "triage_acuity": 1 + i % 5,
        "chiefcomplaint": "CHEST PAIN" if i % 4 == 0 else "",
        "chiefcom_chest_pain": i % 4 == 0, "chiefcom_cough": i % 4 == 1, "cci_CHF": i % 6 == 0, "eci_Depression": 0,
        "outcome_hospitalization": i % 3 == 0, "outcome_critical": i % 10 == 0, "outcome_ed_revisit_3d": i % 7 == 0,
    }


def test_mimic_iv_ed(tmp_path, capsys):
    raw = tmp_path / "mimic-iv-ed"
    write_csv(raw / "master_dataset.csv", [ed_row(i) for i in range(300)])
    paths = convert("mimic_iv_ed", raw, tmp_path / "out")
    assert len(paths) == 6
    out = tmp_path / "out"
    t117, tr117 = check_pair(out, "task117_mimic_iv_ed_hospitalization")
    t118, tr118 = check_pair(out, "task118_mimic_iv_ed_72h_revisit")
    t119, tr119 = check_pair(out, "task119_mimic_iv_ed_critical_triage")
    assert len(t117) + len(tr117) == 299  # the one minor (age 17) is dropped
    assert {i.target for i in t117 + tr117} == {"True", "False"}
    # task118 only covers stays discharged from the ED
    stays_118 = {int(i.id.split(":")[1]) for i in t118 + tr118}
    assert stays_118 == {30000000 + i for i in range(300) if i % 3 and i != 5}
    by_id = {int(i.id.split(":")[1]): i for i in t117 + tr117}
    assert by_id[30000000].target == "True" and by_id[30000001].target == "False"
    assert {i.target for i in t119 if int(i.id.split(":")[1]) % 10 == 0} <= {"True"}
    # the three tasks share their inputs, so they share one patient-level split
    test_subjects = {i.input for i in t117}
    assert {i.input for i in t119} == test_subjects
    assert not test_subjects & {i.input for i in tr119}
    text = by_id[30000000].input
    assert "Age: 30" in text and "Chief complaint: CHEST PAIN" in text and "congestive heart failure" in text
    assert "Triage temperature: 97 °F" in text and "Triage blood pressure: 100/60 mmHg" in text
    assert "Triage temperature: unknown" in by_id[30000007].input
    # wrong columns: one line naming the file and the column
    write_csv(raw / "master_dataset.csv", [{k: v for k, v in ed_row(0).items() if k != "outcome_critical"}])
    err = cli_error(["data", "convert", "mimic_iv_ed", "--raw", str(raw), "--out", str(out)], capsys)
    assert "master_dataset.csv:1" in err and "outcome_critical" in err
    bad = ed_row(1) | {"outcome_hospitalization": "maybe"}
    write_csv(raw / "master_dataset.csv", [ed_row(0), bad])
    with pytest.raises(MedsbenchError, match=r"master_dataset.csv:3: column outcome_hospitalization"):
        convert("mimic_iv_ed", raw, out)
    with pytest.raises(MedsbenchError, match="master_dataset.csv"):
        convert("mimic_iv_ed", raw_dir("ddxplus"), out)


def test_mimic_iv_ed_official_split(tmp_path):
    raw = tmp_path / "mimic-iv-ed"
    write_csv(raw / "train.csv", [ed_row(i) for i in range(40)])
    write_csv(raw / "test.csv", [ed_row(i) for i in range(40, 50)])
    convert("mimic_iv_ed", raw, tmp_path / "out")
    test, train = check_pair(tmp_path / "out", "task117_mimic_iv_ed_hospitalization")
    assert {i.id for i in test} == {f"task117:{30000000 + i}" for i in range(40, 50)}
    assert "official" in read_task(tmp_path / "out" / "task117_mimic_iv_ed_hospitalization.test.json").meta["medsbench"]["split_method"]


# ---------------------------------------------------------------- MedNLI (synthetic jsonl)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def nli_rows(prefix: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        premise = f"Synthetic {prefix} patient {i} had a creatinine of {i}.{i} mg/dL."
        for label, hyp in (("entailment", f"the {prefix} patient {i} has a lab result"),
                           ("contradiction", f"the {prefix} patient {i} had no labs"),
                           ("neutral", f"the {prefix} patient {i} has kidney disease")):
            rows.append({"sentence1": premise, "sentence2": hyp, "gold_label": label, "pairID": f"{prefix}-{i}-{label}"})
    return rows


def test_mednli(tmp_path, capsys):
    raw = tmp_path / "mednli"
    write_jsonl(raw / "mli_train_v1.jsonl", nli_rows("train", 10))
    write_jsonl(raw / "mli_dev_v1.jsonl", nli_rows("dev", 3) + nli_rows("test", 1))  # one test premise leaks
    write_jsonl(raw / "mli_test_v1.jsonl", nli_rows("test", 4))
    convert("mednli", raw, tmp_path / "out")
    t41, tr41 = check_pair(tmp_path / "out", "task41_mednli_discriminative")
    assert len(t41) == 12 and len(tr41) == 39
    assert {i.target for i in t41} == {"entailment", "contradiction", "neutral"}
    assert t41[0].input.startswith("Sentence1: Synthetic test patient 0") and "\nSentence2: " in t41[0].input
    t42, tr42 = check_pair(tmp_path / "out", "task42_mednli_generative")
    assert len(t42) == 4 and len(tr42) == 13
    assert t42[0].input == "Synthetic test patient 0 had a creatinine of 0.0 mg/dL."
    assert t42[0].target == "the test patient 0 has a lab result."
    write_jsonl(raw / "mli_test_v1.jsonl", [{"sentence1": "a", "sentence2": "b", "gold_label": "entailment"}])
    err = cli_error(["data", "convert", "mednli", "--raw", str(raw), "--out", str(tmp_path / "o")], capsys)
    assert "mli_test_v1.jsonl:1" in err and "pairID" in err
    with pytest.raises(MedsbenchError, match="mli_train_v1.jsonl"):
        convert("mednli", raw_dir("ddxplus"), tmp_path / "o")


# ---------------------------------------------------------------- SEER (synthetic SEER*Stat export)

SEER_LABELS = ["No radiation and/or cancer-directed surgery", "Radiation after surgery", "Radiation prior to surgery"]


def seer_row(i: int) -> dict:
    return {
        "Patient ID": f"{i:08d}", "Age recode with <1 year olds": f"{50 + i % 30}-{54 + i % 30} years",
        "Sex": "Female" if i % 2 else "Male", "Year of diagnosis": 2010 + i % 8,
        "Primary Site - labeled": "C50.9-Breast, NOS" if i % 2 else "C34.1-Upper lobe, lung",
        "Histologic Type ICD-O-3": 8500 + i % 7,
        "Derived AJCC Stage Group, 7th ed (2010-2015)": ["I", "IIA", "IIIB", "IV"][i % 4],
        "Tumor Size Summary (2016+)": "" if i % 5 else 12 + i,
        "Radiation sequence with surgery": "Sequence unknown, but both were given" if i == 3 else SEER_LABELS[i % 3],
        "stutus_5_years": "Alive" if i % 2 else "Dead",
    }


def test_seer(tmp_path, capsys):
    raw = tmp_path / "seer"
    write_csv(raw / "Query_5_years.csv", [seer_row(i) for i in range(200)])
    convert("seer", raw, tmp_path / "out")
    test, train = check_pair(tmp_path / "out", "task131_seer_treatment")
    assert len(test) + len(train) == 199  # the non-option label row is skipped
    assert 5 < len(test) < 40
    assert all(i.target.startswith("The treatment planning is: ") and i.target[27:] in SEER_LABELS for i in test + train)
    sample = (test + train)[0].input
    assert "Primary Site - labeled: " in sample and "stutus_5_years" not in sample and "Patient ID" not in sample
    assert "Radiation sequence" not in sample
    meta = read_task(tmp_path / "out" / "task131_seer_treatment.test.json").meta
    assert meta["medsbench"]["skipped_rows_label_not_an_option"] == 1
    # wrong columns
    write_csv(raw / "Query_5_years.csv", [{k: v for k, v in seer_row(0).items() if k != "Radiation sequence with surgery"}])
    err = cli_error(["data", "convert", "seer", "--raw", str(raw), "--out", str(tmp_path / "o")], capsys)
    assert "Query_5_years.csv:1" in err and "Radiation sequence with surgery" in err
    no_stage = {k: v for k, v in seer_row(0).items() if "Stage" not in k}
    write_csv(raw / "Query_5_years.csv", [no_stage])
    with pytest.raises(MedsbenchError, match="Query_5_years.csv:1: no stage column"):
        convert("seer", raw, tmp_path / "o")


# ---------------------------------------------------------------- DDXPlus (real definitions, synthetic patients)


def test_ddxplus(tmp_path, capsys):
    real = raw_dir("ddxplus")
    # the real folder has no patients: one clear line saying where to get them
    err = cli_error(["data", "convert", "ddxplus", "--raw", str(real), "--out", str(tmp_path / "o")], capsys)
    assert "release_test_patients" in err and "figshare" in err
    raw = tmp_path / "ddxplus"
    raw.mkdir()
    for name in ("release_conditions.json", "release_evidences.json"):
        (raw / name).write_bytes((real / name).read_bytes())
    evidences = json.loads((real / "release_evidences.json").read_text(encoding="utf-8"))
    binary = [k for k, v in evidences.items() if v["data_type"] == "B"][:6]
    pain_where = "E_55"  # multi-choice location
    locs = list(evidences[pain_where]["value_meaning"])[1:3]
    scale = next(k for k, v in evidences.items() if v["data_type"] == "C" and not v["value_meaning"])

    def patient(i: int, pathology: str) -> dict:
        evs = [binary[i % 6], binary[(i + 1) % 6], *[f"{pain_where}_@_{v}" for v in locs], f"{scale}_@_{i % 8}"]
        return {"AGE": 20 + i, "SEX": "F" if i % 2 else "M", "PATHOLOGY": pathology, "EVIDENCES": str(evs),
                "INITIAL_EVIDENCE": binary[i % 6], "DIFFERENTIAL_DIAGNOSIS": str([[pathology, 0.9]])}

    write_csv(raw / "release_test_patients", [patient(i, "URTI") for i in range(20)])
    write_csv(raw / "release_train_patients.csv",
              [patient(i, "Pneumonie" if i % 2 else "Anemia") for i in range(10, 60)])  # French names map too
    paths = convert("ddxplus", raw, tmp_path / "out")
    assert len(paths) == 2
    test, train = check_pair(tmp_path / "out", "task130_ddxplus")
    assert len(test) == 20 and len(train) == 40  # train rows whose dialogue also is in test are dropped
    assert {i.target for i in test} == {"The diagnosis result is urti."}
    assert {i.target for i in train} == {"The diagnosis result is pneumonia.", "The diagnosis result is anemia."}
    dialogue = test[1].input
    assert dialogue.startswith("Doctor: What is your age and sex?\nPatient: I am 21 years old, female.")
    loc_text = ", ".join(evidences[pain_where]["value_meaning"][v]["en"] for v in locs)
    assert f"Doctor: {evidences[pain_where]['question_en']}\nPatient: {loc_text}." in dialogue
    assert dialogue.count(evidences[binary[1]]["question_en"]) == 1  # the initial evidence is asked once
    assert "(on a scale of 0 to 10)" in dialogue
    defn = read_task(tmp_path / "out" / "task130_ddxplus.test.json").meta["Definition"][0]
    assert "urti" in defn and "pneumonia" in defn
    write_csv(raw / "release_test_patients", [patient(0, "Common cold")])
    with pytest.raises(MedsbenchError, match="release_test_patients:2: PATHOLOGY 'Common cold'"):
        convert("ddxplus", raw, tmp_path / "o")
    write_csv(raw / "release_test_patients", [{k: v for k, v in patient(0, "URTI").items() if k != "EVIDENCES"}])
    with pytest.raises(MedsbenchError, match="release_test_patients:1: missing column 'EVIDENCES'"):
        convert("ddxplus", raw, tmp_path / "o")


# ---------------------------------------------------------------- radiology reports

CXR_REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  Synthetic report {n} for testing.

 COMPARISON:  None.

 FINDINGS:

 Synthetic finding {n}: lungs are clear.  No pleural
 effusion.

 IMPRESSION:

 No acute cardiopulmonary process {n}.

 NOTIFICATION:  None.
"""


def test_findings_impression_rules():
    assert findings_impression(CXR_REPORT.format(n=1)) == (
        "Synthetic finding 1: lungs are clear. No pleural effusion.", "No acute cardiopulmonary process 1.")
    assert findings_impression("FINDINGS: something\n") is None
    assert findings_impression("IMPRESSION: a\nFINDINGS: b\n") is None
    assert classify_exam("CT CHEST W/CONTRAST") == "task83"
    assert classify_exam("CTA HEAD AND NECK W&W/O C & RECONS") == "task84"
    assert classify_exam("CT HEAD W/O CONTRAST") == "task85"
    assert classify_exam("CT ABD & PELVIS WITH CONTRAST") == "task86"
    assert classify_exam("MR PELVIS W/O CONTRAST") == "task93"
    assert classify_exam("MR L-SPINE W/O CONTRAST") == "task94"
    assert classify_exam("US ABD LIMIT, SINGLE ORGAN") == "task78"
    assert classify_exam("CHEST (PA AND LAT)") is None  # X-ray: not one of these tasks
    assert classify_exam("CT EXTREMITY") is None


def test_mimic_cxr(tmp_path, capsys):
    raw = tmp_path / "mimic-cxr"
    split_rows = []
    for n in range(40):
        subject, study = 10000000 + n, 50000000 + n
        path = raw / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CXR_REPORT.format(n=n) if n != 7 else "FINDINGS: only findings\n", encoding="utf-8")
        split_rows.append({"dicom_id": f"d{n}", "study_id": study, "subject_id": subject,
                           "split": "test" if n < 10 else ("validate" if n < 15 else "train")})
    convert("mimic_cxr", raw, tmp_path / "hash")
    test, train = check_pair(tmp_path / "hash", "task112_mimic_cxr_summ")
    assert len(test) + len(train) == 39
    write_csv(raw / "mimic-cxr-2.0.0-split.csv", split_rows)
    convert("mimic_cxr", raw, tmp_path / "out")
    test, train = check_pair(tmp_path / "out", "task112_mimic_cxr_summ")
    assert {i.id for i in test} == {f"task112:s{50000000 + n}" for n in range(10) if n != 7}
    assert len(train) == 30 and test[0].target == "No acute cardiopulmonary process 0."
    err = cli_error(["data", "convert", "mimic_cxr", "--raw", str(raw_dir("ddxplus")), "--out", str(tmp_path)], capsys)
    assert "MIMIC-CXR reports" in err


NOTE_EXAMS = ["CT CHEST W/CONTRAST", "MR HEAD W & W/O CONTRAST", "US ABD LIMIT, SINGLE ORGAN", "CHEST (PA AND LAT)"]


def test_mimic_iv_note(tmp_path, capsys):
    raw = tmp_path / "mimic-iv-note" / "note"
    notes, details = [], []
    for n in range(120):
        exam = NOTE_EXAMS[n % 4]
        text = (f"EXAMINATION:  {exam}\n\nINDICATION:  synthetic {n}\n\nFINDINGS:\n Synthetic finding number {n}.\n"
                f"LIVER: unremarkable.\n\nIMPRESSION:\n Synthetic impression {n}.\n")
        notes.append({"note_id": f"{10000000 + n}-RR-{n}", "subject_id": 10000000 + n // 3, "hadm_id": "",
                      "note_type": "RR", "note_seq": n, "charttime": "2180-01-01 00:00:00",
                      "storetime": "2180-01-01 01:00:00", "text": text})
        details.append({"note_id": f"{10000000 + n}-RR-{n}", "subject_id": 10000000 + n // 3, "field_name": "exam_name",
                        "field_value": exam, "field_ordinal": 1})
    write_csv(raw / "radiology.csv", notes)
    write_csv(raw / "radiology_detail.csv", details)
    paths = convert("mimic_iv_note", raw.parent, tmp_path / "out")
    names = sorted(p.name.split(".")[0] for p in paths)
    assert set(names) == {"task83_mimic_iv_ct_chest_summ", "task91_mimic_iv_mri_brain_summ", "task78_mimic_iv_ultrasound_summ"}
    test, train = check_pair(tmp_path / "out", "task83_mimic_iv_ct_chest_summ")
    assert len(test) + len(train) == 30
    inst = (test + train)[0]
    assert inst.input.startswith("Synthetic finding number") and "LIVER: unremarkable." in inst.input
    assert inst.target.startswith("Synthetic impression")
    # patient-level hash split: every report of a subject is on one side
    for i in test + train:
        n = int(i.id.split("-")[-1])
        expected = hash_split(str(10000000 + n // 3), salt="task83")
        assert (i in test) == (expected == "test")
    write_csv(raw / "radiology.csv", [{k: v for k, v in notes[0].items() if k != "text"}])
    err = cli_error(["data", "convert", "mimic_iv_note", "--raw", str(raw.parent), "--out", str(tmp_path / "o")], capsys)
    assert "radiology.csv:1" in err and "'text'" in err
