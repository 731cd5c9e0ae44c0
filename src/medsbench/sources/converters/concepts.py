"""Concept explanation for MedS-Ins (train split only): medical abbreviations and ICD-10-CM codes.

* ``medical_abbreviations/CSVs/*.csv`` (``Abbreviation/Shorthand, Meaning, More
  Info``): abbreviation -> its meaning(s); an abbreviation listed several times is
  one instance whose answer lists every meaning (task1002, a medsbench-local id).
* ``icd10cm/icd10cm_2026_codes.tsv``: ICD-10-CM code -> its official description
  (task115, MedS-Ins' ICD-10-CM explanation task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import Splits, TaskSpec, instance, no_options, norm_space, read_csv_rows, write_splits
from medsbench.sources.registry import register_source, require_file

TRAIN_ONLY = "train only: a MedS-Ins training task, no MedS-Bench test split"

ABBREVIATIONS = TaskSpec(
    task_id="task1002",
    slug="medical_abbreviations",
    definition=(
        "You are given an abbreviation or shorthand used in medical notes. Spell out what it stands for; "
        "if it has several common meanings, give each of them."
    ),
    source="medical_abbreviations (imantsm)",
    url="https://github.com/imantsm/medical_abbreviations",
    license="MIT",
    category="Explanation",
    language="en",
)
ICD10CM = TaskSpec(
    task_id="task115",
    slug="icd10cm_code_explanation",
    definition=(
        "You are given an ICD-10-CM diagnosis code. Give the official description of the condition or "
        "circumstance that the code stands for."
    ),
    source="ICD-10-CM FY2026 (CDC/NCHS)",
    url="https://www.cdc.gov/nchs/icd/icd-10-cm/files.html",
    license="US public domain (CDC/NCHS)",
    category="Explanation",
    language="en",
)


@register_source(
    "medical_abbreviations",
    description="Medical abbreviations -> meanings (MedS-Ins concept explanation, train only)",
    raw_folder="medical_abbreviations",
)
def medical_abbreviations(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("medical_abbreviations", options)
    files = sorted((raw_dir / "CSVs").glob("*.csv")) if (raw_dir / "CSVs").is_dir() else []
    if not files:
        raise MedsbenchError("expected CSVs/*.csv (Abbreviation/Shorthand, Meaning, More Info)", where=str(raw_dir))
    meanings: dict[str, list[str]] = {}
    for path in files:
        for row in read_csv_rows(path, ("Abbreviation/Shorthand", "Meaning")):
            abbr, meaning = norm_space(row["Abbreviation/Shorthand"] or ""), norm_space(row["Meaning"] or "")
            if not abbr or not meaning:
                continue
            info = norm_space(row.get("More Info") or "")
            text = f"{meaning} ({info})" if info else meaning
            known = meanings.setdefault(abbr, [])
            if text.lower() not in (m.lower() for m in known):
                known.append(text)
    splits = Splits(
        train=[
            instance(abbr, abbr, f"{abbr} stands for {'; or '.join(ms)}." if len(ms) > 1 else f"{abbr} stands for {ms[0]}.")
            for abbr, ms in meanings.items()
        ]
    )
    return write_splits(
        out_dir, ABBREVIATIONS, splits, split_method=TRAIN_ONLY, extra={"medsins_only": True, "local_task_id": True}
    )


@register_source(
    "icd10cm",
    description="ICD-10-CM code -> description (MedS-Ins concept explanation, train only)",
    raw_folder="icd10cm",
)
def icd10cm(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("icd10cm", options)
    path = require_file(raw_dir, "icd10cm_2026_codes.tsv")
    rows = read_csv_rows(path, ("code_dotted", "description"), delimiter="\t")
    splits = Splits(
        train=[
            instance(row["code_dotted"], row["code_dotted"], row["description"].strip())
            for row in rows
            if row["code_dotted"] and row["description"]
        ]
    )
    return write_splits(out_dir, ICD10CM, splits, split_method=TRAIN_ONLY, extra={"medsins_only": True})
