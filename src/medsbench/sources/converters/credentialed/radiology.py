"""Radiology report summarisation (FINDINGS -> IMPRESSION) from MIMIC-CXR and MIMIC-IV-Note.

Sections: a heading is an upper-case phrase followed by ":" at the start of a line
("FINDINGS:", "IMPRESSION:", "RECOMMENDATION(S):"...). Input = the text from FINDINGS to
IMPRESSION (organ sub-headings stay in), gold = the IMPRESSION text up to a closing
heading (recommendation, notification, addendum...) or the end; whitespace collapsed.
Reports without both, or with an empty one, are skipped.

* ``mimic_cxr`` -> task112. Reports as released in ``mimic-cxr-reports.zip``:
  ``files/pXX/p<subject>/s<study>.txt`` (the folder tree or the zip itself). Split: the
  official ``mimic-cxr-2.0.0-split.csv(.gz)`` (columns dicom_id, study_id, subject_id,
  split; test = "test", train = "train" + "validate") when present, else 9:1 by a hash
  of the subject id (patient-disjoint).
* ``mimic_iv_note`` -> task78 (ultrasound) and task83-94 (CT / MRI x chest, head and neck,
  brain, abdomen, pelvis, spine). ``note/radiology.csv(.gz)`` (note_id, subject_id, text)
  and, when present, ``note/radiology_detail.csv(.gz)`` (note_id, field_name,
  field_value): its ``exam_name`` names the examination; without it the "EXAMINATION:"
  line of the report is used. Modality and anatomy come from whole words of the exam name
  (rules in ``MODALITY_WORDS`` / ``ANATOMY_WORDS``, first anatomy match in that order).
  Split: 9:1 by a hash of the subject id.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.sources.converters.credentialed._common import find_file, read_csv
from medsbench.sources.registry import HASH_SPLIT_NOTE, TaskSpec, hash_split, register_source, write_splits
from medsbench.tasks.format import Instance

LICENSE = "PhysioNet Credentialed Health Data License 1.5.0; not redistributable"
_HEADING = re.compile(r"^[ \t]*([A-Z][A-Z &/(),-]*[A-Z)])[ \t]*:", re.M)


def sections(report: str) -> dict[str, str]:
    """Upper-case headed sections of a report; the first occurrence of a heading wins."""
    out: dict[str, str] = {}
    marks = list(_HEADING.finditer(report))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(report)
        out.setdefault(m.group(1).strip(), " ".join(report[m.end() : end].split()))
    return out


def findings_impression(report: str) -> tuple[str, str] | None:
    """(findings, impression): FINDINGS runs to the IMPRESSION heading (sub-headings such as
    "LUNGS:" stay inside it); IMPRESSION runs to a closing heading (recommendation,
    notification, addendum...) or the end."""
    marks = [(m.group(1).strip(), m.start(), m.end()) for m in _HEADING.finditer(report)]
    f = next((m for m in marks if m[0] == "FINDINGS"), None)
    i = next((m for m in marks if m[0] == "IMPRESSION" and f is not None and m[1] > f[2]), None)
    if f is None or i is None:
        return None
    stop = next((m[1] for m in marks if m[1] > i[2] and m[0].rstrip("(S)") in _CLOSING), len(report))
    findings, impression = " ".join(report[f[2] : i[1]].split()), " ".join(report[i[2] : stop].split())
    return (findings, impression) if findings and impression else None


_CLOSING = {"RECOMMENDATION", "RECOMMENDATIONS", "NOTIFICATION", "ADDENDUM", "COMMENT", "COMMENTS", "ATTESTATION",
            "CONCLUSION", "FINAL REPORT", "COMPARISON", "TECHNIQUE", "INDICATION", "HISTORY", "EXAMINATION"}


# ---------------------------------------------------------------- MIMIC-CXR (task112)

_CXR_PATH = re.compile(r"p(\d+)/s(\d+)\.txt$")
DEF112 = (
    "You will be given the findings section of a chest X-ray report. Write the impression: a short summary of "
    "the most immediately relevant findings."
)


def _cxr_reports(raw_dir: Path) -> Iterator[tuple[str, str, str]]:
    """(subject_id, study_id, text) of every report, from the folder tree or the zip."""
    zips = sorted(raw_dir.glob("mimic-cxr-reports*.zip"))
    if zips:
        with zipfile.ZipFile(zips[0]) as zf:
            for name in sorted(zf.namelist()):
                m = _CXR_PATH.search(name)
                if m:
                    yield m.group(1), m.group(2), zf.read(name).decode("utf-8", errors="replace")
        return
    for path in sorted(raw_dir.rglob("s*.txt")):
        m = _CXR_PATH.search(path.as_posix())
        if m:
            yield m.group(1), m.group(2), path.read_text(encoding="utf-8", errors="replace")


def _cxr_split(raw_dir: Path) -> dict[str, str] | None:
    path = find_file(raw_dir, "mimic-cxr-2.0.0-split")
    if path is None:
        return None
    return {row["study_id"]: ("test" if row["split"] == "test" else "train")
            for _, row in read_csv(path, ("study_id", "subject_id", "split"))}


@register_source("mimic_cxr", description="MIMIC-CXR reports (FINDINGS -> IMPRESSION) -> task112 (credentialed)",
                 raw_folder="mimic-cxr", tasks=["task112"])
def mimic_cxr(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    official = _cxr_split(raw_dir)
    rows: dict[str, list[Instance]] = {"test": [], "train": []}
    n_reports = 0
    for subject, study, text in _cxr_reports(raw_dir):
        n_reports += 1
        pair = findings_impression(text)
        if pair is None:
            continue
        if official is not None:
            split = official.get(study)
            if split is None:
                continue
        else:
            split = hash_split(subject, salt="task112")
        rows[split].append(Instance(id=f"task112:s{study}", input=pair[0], output=[pair[1]], output_was_str=True))
    if n_reports == 0:
        raise MedsbenchError("no MIMIC-CXR reports (files/pXX/p<subject>/s<study>.txt or mimic-cxr-reports.zip) here",
                             where=str(raw_dir))
    method = ("official mimic-cxr-2.0.0-split.csv (test = test; train = train + validate)" if official is not None
              else HASH_SPLIT_NOTE + " (subject id)")
    spec = TaskSpec.bench("task112", definition=DEF112, source="MIMIC-CXR", url="https://physionet.org/content/mimic-cxr/",
                          license=LICENSE)
    return write_splits(out_dir, spec, {"test": rows["test"], "train": rows["train"]}, split_method=method, require=("test",))


# ---------------------------------------------------------------- MIMIC-IV-Note (task78, task83-94)

MODALITY_WORDS = {
    "CT": {"CT", "CTA", "CTU"},
    "MRI": {"MR", "MRI", "MRA", "MRV", "MRCP"},
    "Ultrasound": {"US", "ULTRASOUND", "DUPLEX", "DOPPLER", "SONO", "SONOGRAM", "SONOGRAPHY"},
}
ANATOMY_WORDS = {  # order matters: the first anatomy with a matching word wins
    "spine": {"SPINE", "SPINAL", "C-SPINE", "T-SPINE", "L-SPINE", "CSPINE", "TSPINE", "LSPINE", "LUMBAR", "THORACIC",
              "CERVICAL", "SACRUM", "COCCYX"},
    "head_and_neck": {"NECK", "SINUS", "SINUSES", "ORBIT", "ORBITS", "FACE", "FACIAL", "MAXILLOFACIAL", "MANDIBLE",
                      "TEMPORAL", "IAC", "IACS", "LARYNX", "THYROID", "SOFT-TISSUE-NECK"},
    "brain": {"BRAIN", "HEAD", "PITUITARY"},
    "chest": {"CHEST", "THORAX", "LUNG", "LUNGS", "PULMONARY"},
    "abdomen": {"ABD", "ABDOMEN", "ABDOMINAL", "LIVER", "PANCREAS", "RENAL", "KIDNEY", "KIDNEYS", "ENTEROGRAPHY",
                "UROGRAM", "MRCP", "ADRENAL", "SPLEEN", "ABDOMINOPELVIC"},
    "pelvis": {"PELVIS", "PELVIC", "PROSTATE", "RECTUM", "RECTAL", "UTERUS", "OVARIES", "BLADDER", "HIP", "HIPS"},
}
ANATOMIES = ("chest", "head_and_neck", "brain", "abdomen", "pelvis", "spine")
TASK_OF = {("Ultrasound", None): "task78"} | {
    (modality, anatomy): f"task{base + i}" for modality, base in (("CT", 83), ("MRI", 89)) for i, anatomy in enumerate(ANATOMIES)
}
_WORD = re.compile(r"[A-Z]+(?:-[A-Z]+)*")


def classify_exam(exam: str) -> str | None:
    """The task id of an examination name (e.g. 'CT CHEST W/CONTRAST' -> task83), or None."""
    words = set(_WORD.findall(exam.upper()))
    words |= {w.replace("-", "") for w in words}
    for modality, keys in MODALITY_WORDS.items():
        if words & keys:
            if modality == "Ultrasound":
                return TASK_OF[(modality, None)]
            for anatomy, akeys in ANATOMY_WORDS.items():
                if words & akeys:
                    return TASK_OF[(modality, anatomy)]
            return None
    return None


def _definition(task_id: str) -> str:
    for (modality, anatomy), tid in TASK_OF.items():
        if tid == task_id:
            what = f"{modality} imaging" + (f" of the {anatomy.replace('_', ' ')}" if anatomy else "")
            return f"Given the detailed findings of a {what} report, summarize them into the report's concise conclusion."
    raise KeyError(task_id)


@register_source("mimic_iv_note", description="MIMIC-IV-Note radiology reports -> task78, task83-94 (credentialed)",
                 raw_folder="mimic-iv-note", tasks=sorted(set(TASK_OF.values()), key=lambda t: int(t[4:])))
def mimic_iv_note(raw_dir: Path, out_dir: Path, **_options: object) -> list[Path]:
    reports = find_file(raw_dir, "radiology")
    if reports is None:
        raise MedsbenchError("expected note/radiology.csv(.gz) of MIMIC-IV-Note here", where=str(raw_dir))
    detail = find_file(raw_dir, "radiology_detail")
    exams: dict[str, str] = {}
    if detail is not None:
        for _, row in read_csv(detail, ("note_id", "field_name", "field_value")):
            if row["field_name"] == "exam_name":
                exams[row["note_id"]] = row["field_value"]
    rows: dict[str, dict[str, list[Instance]]] = {t: {"test": [], "train": []} for t in TASK_OF.values()}
    for _, row in read_csv(reports, ("note_id", "subject_id", "text")):
        text = row["text"] or ""
        exam = exams.get(row["note_id"]) or sections(text).get("EXAMINATION", "")
        task_id = classify_exam(exam) if exam else None
        if task_id is None:
            continue
        pair = findings_impression(text)
        if pair is None:
            continue
        split = hash_split(row["subject_id"], salt=task_id)
        rows[task_id][split].append(Instance(id=f"{task_id}:{row['note_id']}", input=pair[0], output=[pair[1]],
                                             output_was_str=True))
    written: list[Path] = []
    for task_id, splits in rows.items():
        if not splits["test"]:
            continue  # a partial extract may lack some modality/anatomy pairs
        spec = TaskSpec.bench(task_id, definition=_definition(task_id), source="MIMIC-IV-Note",
                              url="https://physionet.org/content/mimic-iv-note/", license=LICENSE)
        written += write_splits(
            out_dir, spec, {"test": splits["test"], "train": splits["train"]},
            split_method=HASH_SPLIT_NOTE + " (subject id)",
            extra={"exam_name_from": "radiology_detail.csv exam_name" if detail else "EXAMINATION: line"}, require=("test",),
        )
    if not written:
        raise MedsbenchError("no ultrasound/CT/MRI report with FINDINGS and IMPRESSION sections", where=str(reports))
    return written
