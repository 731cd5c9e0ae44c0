"""DDXPlus (Fansi Tchango et al. 2022; figshare, CC-BY) -> task130 diagnosis.

Needs the official release files: ``release_conditions.json``, ``release_evidences.json``
(both are in ../shared/data/raw/ddxplus) and the patient tables
``release_test_patients`` / ``release_train_patients`` (``release_validate_patients``
optional), each a CSV -- as shipped inside the figshare zips, with or without ``.csv``, or
the ``.zip`` itself -- with columns AGE, SEX, PATHOLOGY, EVIDENCES, INITIAL_EVIDENCE,
DIFFERENTIAL_DIAGNOSIS. The patient tables are NOT in ../shared: without them the
converter stops with a one-line error saying where to get them.

Input: a doctor-patient dialogue: age and sex, then the initial evidence, then every other
evidence in record order, one question (``question_en``) and one answer each (binary:
"Yes."; categorical/multi-choice: the English value meanings, several values of one
question joined; numeric scales: "<n> (on a scale of <min> to <max>)."). Gold: "The
diagnosis result is <pathology>." with the English pathology name in lower case (the
label list of the official definition is lower case). Official split: test =
release_test_patients (the paper samples 1,500: ``sample=1500``), train = train (+
validate) minus inputs in test.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import read_json, stable_seed
from medsbench.sources.converters.credentialed._common import read_csv
from medsbench.sources.registry import TaskSpec, register_source, require_file, write_splits
from medsbench.tasks.format import Instance

URL = "https://figshare.com/articles/dataset/DDXPlus_Dataset/20043374"
COLUMNS = ("AGE", "SEX", "PATHOLOGY", "EVIDENCES", "INITIAL_EVIDENCE", "DIFFERENTIAL_DIAGNOSIS")
PATIENT_FILES = {"test": ("release_test_patients",), "train": ("release_train_patients", "release_validate_patients")}
_SUFFIXES = ("", ".csv", ".zip", ".csv.gz")


class Ontology:
    """Evidence questions/values and condition names of the DDXPlus release."""

    def __init__(self, conditions: dict[str, Any], evidences: dict[str, Any]):
        self.evidences = evidences
        self.names: dict[str, str] = {}
        for key, cond in conditions.items():
            eng = cond.get("cond-name-eng") or key
            for alias in (key, cond.get("condition_name"), cond.get("cond-name-fr"), eng):
                if alias:
                    self.names[alias.strip().lower()] = eng.lower()
        self.definition = (
            "Imagine you are a doctor. I will give you a dialogue between a doctor and a patient; make a diagnosis "
            "decision based on it. Choose one answer among: "
            + ", ".join(sorted({n for n in self.names.values()}))
            + ". Answer as 'The diagnosis result is <diagnosis>.'"
        )

    def pathology(self, value: str, where: str) -> str:
        try:
            return self.names[value.strip().lower()]
        except KeyError:
            raise MedsbenchError(f"PATHOLOGY '{value}' is not a condition of release_conditions.json", where=where) from None

    def _value(self, code: str, value: str, where: str) -> str:
        ev = self.evidences[code]
        meaning = ev.get("value_meaning") or {}
        if value in meaning:
            text = meaning[value].get("en") or value
            return {"Y": "Yes", "N": "No"}.get(text, text)
        nums = [v for v in ev.get("possible-values") or [] if isinstance(v, (int, float))]
        if nums:
            return f"{value} (on a scale of {min(nums)} to {max(nums)})"
        raise MedsbenchError(f"EVIDENCES: value '{value}' is unknown for {code}", where=where)

    def dialogue(self, row: dict[str, str], where: str) -> str:
        try:
            items = ast.literal_eval(row["EVIDENCES"])
            assert isinstance(items, list)
        except (ValueError, SyntaxError, AssertionError):
            raise MedsbenchError("EVIDENCES: expected a list like ['E_48', 'E_54_@_V_161']", where=where) from None
        answers: dict[str, list[str]] = {}
        initial = row["INITIAL_EVIDENCE"].strip()
        for item in [initial, *items]:
            code, _, value = str(item).partition("_@_")
            if code not in self.evidences:
                raise MedsbenchError(f"evidence code '{code}' is not in release_evidences.json", where=where)
            vals = answers.setdefault(code, [])
            if value:
                val = self._value(code, value, where)
                if val not in vals:
                    vals.append(val)
        sex = {"M": "male", "F": "female"}.get(row["SEX"].strip().upper(), row["SEX"].strip())
        lines = ["Doctor: What is your age and sex?", f"Patient: I am {row['AGE'].strip()} years old, {sex}."]
        for code, vals in answers.items():
            lines.append(f"Doctor: {self.evidences[code]['question_en'].strip()}")
            lines.append(f"Patient: {', '.join(vals) if vals else 'Yes'}.")
        return "\n".join(lines)


def patient_file(raw_dir: Path, stem: str) -> Path | None:
    for suffix in _SUFFIXES:
        path = raw_dir / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _instances(paths: list[Path], onto: Ontology, split: str) -> Iterator[Instance]:
    for path in paths:
        for line, row in read_csv(path, COLUMNS):
            where = f"{path}:{line}"
            yield Instance(id=f"task130:{path.name.split('.')[0]}:{line}", input=onto.dialogue(row, where),
                           output=[f"The diagnosis result is {onto.pathology(row['PATHOLOGY'], where)}."],
                           output_was_str=True)


@register_source("ddxplus", description="DDXPlus patients csv + conditions/evidences json -> task130 diagnosis",
                 raw_folder="ddxplus", tasks=["task130"])
def ddxplus(raw_dir: Path, out_dir: Path, sample: int | None = None, **_: object) -> list[Path]:
    conditions = read_json(require_file(raw_dir, "release_conditions.json"))
    evidences = read_json(require_file(raw_dir, "release_evidences.json"))
    onto = Ontology(conditions, evidences)
    test_file = patient_file(raw_dir, PATIENT_FILES["test"][0])
    if test_file is None:
        raise MedsbenchError(
            "DDXPlus patient table release_test_patients(.csv|.zip) is missing: download the patient zips from "
            f"{URL} (CC-BY) into this folder", where=str(raw_dir))
    train_files = [p for stem in PATIENT_FILES["train"] if (p := patient_file(raw_dir, stem)) is not None]
    test: Any = _instances([test_file], onto, "test")
    if sample is not None:
        pool = list(test)
        if int(sample) < len(pool):
            keep = set(random.Random(stable_seed("sample", "task130", int(sample))).sample(range(len(pool)), int(sample)))
            pool = [inst for i, inst in enumerate(pool) if i in keep]
        test = pool
    method = "official split: test = release_test_patients, train = release_train + release_validate minus inputs in test"
    spec = TaskSpec.bench("task130", definition=onto.definition, source="DDXPlus", url=URL, license="CC-BY 4.0")
    return write_splits(out_dir, spec, {"test": test, "train": _instances(train_files, onto, "train")},
                        split_method=method, extra={"test_sample": sample}, require=("test",))
