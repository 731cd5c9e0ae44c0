"""SEER research data (a SEER*Stat case-listing CSV export) -> task131 treatment planning.

The paper's task asks for the "Radiation sequence with surgery" category of a cancer case
from its summary. We read any CSV export (the first ``*.csv`` in the folder, or
``file=NAME``) with these assumed SEER*Stat column names:

* label (required): ``Radiation sequence with surgery``
* required feature groups, at least one column each: primary site (a column starting
  with "Primary Site" or "Site recode"), histology (a column containing "Histolog" or
  "Hist/behav"), stage (a column containing "Stage", e.g. "Derived AJCC Stage Group, 7th
  ed (2010-2015)", "Combined Summary Stage (2004+)")
* every other column is a feature too (age, sex, race, year of diagnosis, grade, tumour
  size, surgery of primary site, chemotherapy, ...), except ``Patient ID`` (the instance
  id when present) and survival columns (``stutus_5_years`` as in the official script,
  "Survival months", "Vital status recode", "SEER cause-specific death classification").

Input: "<column>: <value>" lines (blank cells skipped). Gold "The treatment planning is:
<label>" (the official format, no final period). Rows whose label is not one of the 7
options of the official definition are skipped (counted in the metadata). No official
split: 9:1 by a hash of the patient id (or of the row when there is no id).
"""

from __future__ import annotations


from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_text
from medsbench.sources.converters.credentialed._common import check_columns, is_missing, read_csv
from medsbench.sources.registry import HASH_SPLIT_NOTE, TaskSpec, hash_split, register_source, write_splits
from medsbench.tasks.format import Instance
from medsbench.tasks.labels import SEER_OPTIONS

LABEL = "Radiation sequence with surgery"
ID_COLUMN = "Patient ID"
OPTIONS = SEER_OPTIONS  # one vocabulary with the strict treatment-planning scorer
EXCLUDED = {LABEL, ID_COLUMN, "stutus_5_years", "status_5_years", "Survival months", "Vital status recode (study cutoff used)",
            "Vital status recode", "SEER cause-specific death classification", "SEER other cause of death classification"}
GROUPS = {
    "primary site": lambda c: c.startswith(("Primary Site", "Site recode")),
    "histology": lambda c: "Histolog" in c or "Hist/behav" in c,
    "stage": lambda c: "Stage" in c,
}
DEFINITION = (
    "Imagine you are a doctor. I will give you a summary of a cancer patient from a cancer registry; suggest the "
    "treatment by choosing one of: " + "; ".join(OPTIONS) + ". Answer as 'The treatment planning is: <choice>'."
)
URL = "https://seer.cancer.gov/data/"
LICENSE = "SEER Research Data Use Agreement; not redistributable"


def _find_csv(raw_dir: Path, file: str | None) -> Path:
    if file:
        path = raw_dir / file
        if not path.is_file():
            raise MedsbenchError(f"{file} not found", where=str(raw_dir))
        return path
    found = sorted(raw_dir.glob("*.csv")) + sorted(raw_dir.glob("*.csv.gz"))
    if not found:
        raise MedsbenchError("expected a SEER*Stat CSV export (*.csv) here", where=str(raw_dir))
    return found[0]


@register_source("seer", description="SEER*Stat CSV export -> task131 treatment planning (credentialed)",
                 raw_folder="seer", tasks=["task131"])
def seer(raw_dir: Path, out_dir: Path, file: str | None = None, **_: object) -> list[Path]:
    path = _find_csv(raw_dir, file)
    skipped = {"label": 0}
    rows: dict[str, list] = {"test": [], "train": []}

    def check(header: list[str]) -> list[str]:
        check_columns(path, header, [LABEL])
        for group, test in GROUPS.items():
            if not any(test(c) for c in header):
                raise MedsbenchError(f"no {group} column (e.g. 'Primary Site - labeled', 'Histologic Type ICD-O-3', "
                                     "'Combined Summary Stage (2004+)')", where=f"{path}:1")
        return [c for c in header if c not in EXCLUDED]

    features: list[str] | None = None
    seen: dict[str, int] = {}
    for _line, row in read_csv(path, [LABEL]):
        if features is None:
            features = check(list(row))
        label = (row[LABEL] or "").strip()
        if label not in OPTIONS:
            skipped["label"] += 1
            continue
        text = "\n".join(f"{c}: {row[c].strip()}" for c in features if not is_missing(row[c]))
        pid = (row.get(ID_COLUMN) or "").strip() or sha256_text(f"{text}\n{label}")[:16]
        seen[pid] = seen.get(pid, 0) + 1  # one row per tumour: a patient may have several
        inst = Instance(id=f"task131:{pid}:{seen[pid]}", input=text, output=[f"The treatment planning is: {label}"],
                        output_was_str=True)
        rows[hash_split(pid, salt="task131")].append(inst)
    if features is None:
        raise MedsbenchError("the CSV has no data rows", where=str(path))
    spec = TaskSpec.bench("task131", definition=DEFINITION, source="SEER", url=URL, license=LICENSE)
    return write_splits(out_dir, spec, {"test": rows["test"], "train": rows["train"]},
                        split_method=HASH_SPLIT_NOTE + " (Patient ID)", require=("test",),
                        extra={"skipped_rows_label_not_an_option": skipped["label"], "feature_columns": features})
