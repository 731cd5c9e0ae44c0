"""MIMIC-IV-ED benchmark table (Xie et al. 2022, nliulab/mimic4ed-benchmark) -> task117-119.

Input: ``master_dataset.csv`` as written by the benchmark's ``extract_master_dataset.py``,
or its ``train.csv`` + ``test.csv`` from ``data_general_processing.py`` (the benchmark's
own 80/20 split; used as the official split when present). Otherwise stays are split 9:1
by a hash of ``subject_id`` with ONE salt for the three tasks: they share their inputs,
so a patient is on the same side in all three and no test EHR leaks via another task.

Rows: adults (age >= 18, as the benchmark). task117 hospitalization =
``outcome_hospitalization``, task119 critical = ``outcome_critical`` (in-hospital death or
ICU transfer within 12 h), task118 72 h ED revisit = ``outcome_ed_revisit_3d`` over stays
discharged from the ED (outcome_hospitalization False), as the benchmark's task 3 does.

The input is a readable summary of the triage record (demographics, prior utilisation,
triage vitals, chief complaint, comorbidity flags); gold is "True" or "False" (the
official clinical-outcome scorer looks for "true"/"false" in the answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.sources.converters.credentialed._common import find_file, is_missing, read_csv
from medsbench.sources.registry import HASH_SPLIT_NOTE, TaskSpec, hash_split, register_source, write_splits
from medsbench.tasks.format import Instance

URL = "https://github.com/nliulab/mimic4ed-benchmark"
LICENSE = "PhysioNet Credentialed Health Data License 1.5.0 (MIMIC-IV-ED); not redistributable"
SPLIT_SALT = "mimic_iv_ed"
ID_COLUMNS = ("subject_id", "stay_id")
VITALS = ("triage_temperature", "triage_heartrate", "triage_resprate", "triage_o2sat", "triage_sbp", "triage_dbp",
          "triage_pain", "triage_acuity")
OUTCOMES = {"task117": "outcome_hospitalization", "task118": "outcome_ed_revisit_3d", "task119": "outcome_critical"}
REQUIRED = (*ID_COLUMNS, "age", "gender", *VITALS, *OUTCOMES.values())
DEFINITIONS = {
    "task117": "Next I will give you the emergency department triage record of a patient. Predict whether the "
    "patient will be admitted to the hospital. Your answer should be True or False.",
    "task118": "Next I will give you the emergency department triage record of a patient who was discharged from "
    "the ED. Predict whether the patient will come back to the emergency department within 72 hours. "
    "Your answer should be True or False.",
    "task119": "Next I will give you the emergency department triage record of a patient. Predict whether the "
    "patient should be put in the critical triage queue (in-hospital death or ICU transfer within 12 hours). "
    "Your answer should be True or False.",
}
COMPLAINTS = {
    "chiefcom_chest_pain": "chest pain", "chiefcom_abdominal_pain": "abdominal pain", "chiefcom_headache": "headache",
    "chiefcom_shortness_of_breath": "shortness of breath", "chiefcom_back_pain": "back pain",
    "chiefcom_cough": "cough", "chiefcom_nausea_vomiting": "nausea or vomiting",
    "chiefcom_fever_chills": "fever or chills", "chiefcom_syncope": "syncope", "chiefcom_dizziness": "dizziness",
}
COMORBIDITIES = {
    "cci_MI": "myocardial infarction", "cci_CHF": "congestive heart failure", "cci_PVD": "peripheral vascular disease",
    "cci_Stroke": "stroke", "cci_Dementia": "dementia", "cci_Pulmonary": "chronic pulmonary disease",
    "cci_Rheumatic": "rheumatic disease", "cci_PUD": "peptic ulcer disease", "cci_Liver1": "mild liver disease",
    "cci_DM1": "diabetes without complications", "cci_DM2": "diabetes with complications",
    "cci_Paralysis": "paralysis", "cci_Renal": "renal disease", "cci_Cancer1": "cancer",
    "cci_Liver2": "severe liver disease", "cci_Cancer2": "metastatic cancer", "cci_HIV": "HIV/AIDS",
    "eci_Arrhythmia": "arrhythmia", "eci_Valvular": "valvular disease", "eci_PHTN": "pulmonary hypertension",
    "eci_HTN1": "hypertension", "eci_HTN2": "hypertension with complications", "eci_NeuroOther": "other neurological disorder",
    "eci_Hypothyroid": "hypothyroidism", "eci_Lymphoma": "lymphoma", "eci_Coagulopathy": "coagulopathy",
    "eci_Obesity": "obesity", "eci_WeightLoss": "weight loss", "eci_FluidsLytes": "fluid and electrolyte disorder",
    "eci_BloodLoss": "blood loss anemia", "eci_Anemia": "deficiency anemia", "eci_Alcohol": "alcohol abuse",
    "eci_Drugs": "drug abuse", "eci_Psychoses": "psychoses", "eci_Depression": "depression",
}
_TRUE = {"true", "1", "1.0", "yes", "t"}
_FALSE = {"false", "0", "0.0", "no", "f"}


def _num(value: str | None) -> str:
    """'98.60000' -> '98.6'; missing -> 'unknown'."""
    if is_missing(value):
        return "unknown"
    try:
        number = float(value)  # type: ignore[arg-type]
    except ValueError:
        return value.strip()  # type: ignore[union-attr]
    return f"{number:.1f}".rstrip("0").rstrip(".")


def _flag(value: str | None) -> bool:
    return not is_missing(value) and value.strip().lower() in _TRUE  # type: ignore[union-attr]


def parse_bool(value: str | None, where: str, column: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise MedsbenchError(f"column {column}: expected True/False, got '{value}'", where=where)


def render_ehr(row: dict[str, str]) -> str:
    """A readable summary of one ED stay's triage record."""
    temp = _num(row["triage_temperature"])
    if temp != "unknown":
        temp += " °F" if float(temp) > 50 else " °C"  # raw MIMIC is °F; the processed split is °C
    lines = [f"Age: {_num(row['age'])}", f"Gender: {row['gender'].strip() or 'unknown'}"]
    visits = [(label, [row.get(f"n_{kind}_{d}d") for d in (30, 90, 365)])
              for label, kind in (("ED visits", "ed"), ("Hospital admissions", "hosp"), ("ICU admissions", "icu"))]
    for label, counts in visits:
        if any(c is not None for c in counts):
            lines.append(f"{label} in the past 30/90/365 days: " + "/".join(_num(c) for c in counts))
    lines += [
        f"Triage temperature: {temp}",
        f"Triage heart rate: {_num(row['triage_heartrate'])} beats/min",
        f"Triage respiratory rate: {_num(row['triage_resprate'])} breaths/min",
        f"Triage oxygen saturation: {_num(row['triage_o2sat'])} %",
        f"Triage blood pressure: {_num(row['triage_sbp'])}/{_num(row['triage_dbp'])} mmHg",
        f"Triage pain score (0-10): {_num(row['triage_pain'])}",
        f"Triage acuity (ESI, 1 = most urgent): {_num(row['triage_acuity'])}",
    ]
    if not is_missing(row.get("chiefcomplaint")):
        lines.append(f"Chief complaint: {row['chiefcomplaint'].strip()}")
    else:
        flagged = [name for col, name in COMPLAINTS.items() if _flag(row.get(col))]
        if any(col in row for col in COMPLAINTS):
            lines.append("Chief complaint: " + (", ".join(flagged) or "none of the common complaints"))
    if any(col in row for col in COMORBIDITIES):
        found = list(dict.fromkeys(name for col, name in COMORBIDITIES.items() if _flag(row.get(col))))
        lines.append("Comorbidities: " + (", ".join(found) or "none recorded"))
    return "\n".join(lines)


def _rows(path: Path) -> Iterator[tuple[str, dict[str, str], dict[str, bool]]]:
    for line, row in read_csv(path, REQUIRED):
        where = f"{path}:{line}"
        try:
            if float(row["age"]) < 18:
                continue
        except ValueError:
            raise MedsbenchError(f"column age: expected a number, got '{row['age']}'", where=where) from None
        outcomes = {task: parse_bool(row[col], where, col) for task, col in OUTCOMES.items()}
        yield where, row, outcomes


def _instances(paths: list[Path], task_id: str, split: str | None) -> Iterator[Instance]:
    for path in paths:
        for _, row, outcomes in _rows(path):
            if split is not None and hash_split(row["subject_id"], salt=SPLIT_SALT) != split:
                continue
            if task_id == "task118" and outcomes["task117"]:
                continue  # revisit is predicted for stays discharged from the ED
            yield Instance(id=f"{task_id}:{row['stay_id']}", input=render_ehr(row),
                           output=[str(outcomes[task_id])], output_was_str=True)


@register_source("mimic_iv_ed", description="MIMIC-IV-ED benchmark master_dataset.csv -> task117-119 (credentialed)",
                 raw_folder="mimic-iv-ed", tasks=list(OUTCOMES))
def mimic_iv_ed(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    train_csv, test_csv = find_file(raw_dir, "train"), find_file(raw_dir, "test")
    splits: dict[str, tuple[list[Path], str | None]]  # split -> (csv files, split column value to keep)
    if train_csv and test_csv:
        splits = {"test": ([test_csv], None), "train": ([train_csv], None)}
        method = "official mimic4ed-benchmark split (data_general_processing.py: train.csv / test.csv)"
    else:
        master = find_file(raw_dir, "master_dataset")
        if master is None:
            raise MedsbenchError("expected master_dataset.csv (or train.csv + test.csv) of mimic4ed-benchmark here",
                                 where=str(raw_dir))
        splits = {"test": ([master], "test"), "train": ([master], "train")}
        method = HASH_SPLIT_NOTE + f" (subject_id, one salt '{SPLIT_SALT}' for task117-119)"
    written: list[Path] = []
    for task_id in OUTCOMES:
        spec = TaskSpec.bench(task_id, definition=DEFINITIONS[task_id], source="MIMIC-IV-ED (mimic4ed-benchmark)", url=URL,
                              license=LICENSE)
        written += write_splits(
            out_dir, spec,
            {"test": _instances(*splits["test"][:1], task_id, splits["test"][1]),
             "train": _instances(*splits["train"][:1], task_id, splits["train"][1])},
            split_method=method, require=("test",),
        )
    return written
