"""Consumer health QA for MedS-Ins (train split only): TREC 2017 LiveQA Medical and MedicationQA.

* LiveQA (``TREC-2017-LiveQA-Medical-Test-Questions-w-summaries.xml``): the
  consumer's message (subject + message) -> the NLM reference answers (task62,
  MedS-Ins' LiveQA task), and -> the NLM question summary (a question
  summarisation task with a medsbench-local id, task1001).
* MedicationQA (``MedInfo2019-QA-Medications.xlsx``): question -> answer(s)
  (task65, MedS-Ins' medication QA task). Rows repeating a question are merged
  into one instance with several reference answers.

Neither feeds a MedS-Bench test task, so everything goes to the train split.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import Splits, TaskSpec, instance, no_options, norm_space, write_splits, xlsx_rows
from medsbench.sources.registry import register_source, require_file

TRAIN_ONLY = "train only: a MedS-Ins training task, no MedS-Bench test split"
LIVEQA_URL = "https://github.com/abachaa/LiveQA_MedicalTask_TREC2017"
LIVEQA_LICENSE = "not stated (NLM/TREC research data; cite the overview paper)"

LIVEQA_QA = TaskSpec(
    task_id="task62",
    slug="liveqa_consumer_qa",
    definition=(
        "You are a doctor answering a patient's message sent to a health information service. "
        "Give a clear, accurate and helpful answer to the medical question the patient asks."
    ),
    source="TREC 2017 LiveQA Medical",
    url=LIVEQA_URL,
    license=LIVEQA_LICENSE,
    category="Question Answering",
    language="en",
)
LIVEQA_SUMM = TaskSpec(
    task_id="task1001",
    slug="liveqa_question_summ",
    definition=(
        "You are given a message a consumer sent to a health information service. Summarise it as one short, "
        "well-formed question that states what the person wants to know."
    ),
    source="TREC 2017 LiveQA Medical",
    url=LIVEQA_URL,
    license=LIVEQA_LICENSE,
    category="Text Summarization",
    language="en",
)
MEDICATION_QA = TaskSpec(
    task_id="task65",
    slug="medicationqa",
    definition=(
        "You are a careful doctor or pharmacist. Answer the consumer's question about a medication (its use, dose, "
        "interactions, side effects or actions) accurately and cautiously."
    ),
    source="MedicationQA (MedInfo 2019)",
    url="https://github.com/abachaa/Medication_QA_MedInfo2019",
    license="not stated (NLM research data; answers quoted from MedlinePlus/DailyMed and similar sites)",
    category="Question Answering",
    language="en",
)


def _text(node: ET.Element | None) -> str:
    return norm_space("".join(node.itertext())) if node is not None else ""


def liveqa_questions(raw_dir: Path) -> list[dict[str, Any]]:
    path = require_file(
        raw_dir, "TREC-2017-LiveQA-Medical-Test-Questions-w-summaries.xml", "TREC-2017-LiveQA-Medical-Test.xml"
    )
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise MedsbenchError(f"invalid XML: {exc}", where=str(path)) from None
    questions = root.findall(".//NLM-QUESTION")
    if not questions:
        raise MedsbenchError("no <NLM-QUESTION> elements", where=str(path))
    out: list[dict[str, Any]] = []
    for q in questions:
        subject = _text(q.find("Original-Question/SUBJECT"))
        message = _text(q.find("Original-Question/MESSAGE"))
        text = "\n".join(part for part in (f"Subject: {subject}" if subject else "", f"Message: {message}" if message else "") if part)
        out.append(
            {
                "qid": q.get("qid") or str(len(out)),
                "text": text,
                "summary": _text(q.find("NLM-Summary")),
                # <ReferenceAnswer> in most questions, <RefAnswer> in a few.
                "answers": [a for a in (_text(r) for r in q.findall("ReferenceAnswers/*/ANSWER")) if a],
            }
        )
    return out


@register_source(
    "liveqa_trec2017",
    description="TREC 2017 LiveQA Medical: consumer QA and question summarisation (MedS-Ins, train only)",
    raw_folder="liveqa_trec2017",
)
def liveqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("liveqa_trec2017", options)
    qs = [q for q in liveqa_questions(raw_dir) if q["text"]]
    qa = Splits(train=[instance(q["qid"], q["text"], q["answers"]) for q in qs if q["answers"]])
    summ = Splits(train=[instance(q["qid"], q["text"], q["summary"]) for q in qs if q["summary"]])
    written = write_splits(out_dir, LIVEQA_QA, qa, split_method=TRAIN_ONLY, extra={"medsins_only": True})
    if summ.train:  # only the "w-summaries" file has them
        written += write_splits(
            out_dir, LIVEQA_SUMM, summ, split_method=TRAIN_ONLY, extra={"medsins_only": True, "local_task_id": True}
        )
    return written


@register_source(
    "medicationqa",
    description="MedicationQA consumer medication questions (MedS-Ins, train only)",
    raw_folder="medicationqa",
)
def medicationqa(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("medicationqa", options)
    path = require_file(raw_dir, "MedInfo2019-QA-Medications.xlsx")
    grouped: dict[str, tuple[int, list[str]]] = {}
    for n, row in enumerate(xlsx_rows(path, "DrugQA", ("Question", "Answer")), 2):
        question, answer = norm_space(row["Question"] or ""), str(row["Answer"] or "").strip()
        if not question or not answer:
            continue  # a few spreadsheets rows are partial; they carry nothing to learn from
        _, answers = grouped.setdefault(question, (n, []))
        if answer not in answers:
            answers.append(answer)
    if not grouped:
        raise MedsbenchError("no rows with both Question and Answer", where=str(path))
    splits = Splits(train=[instance(f"row{row}", q, answers) for q, (row, answers) in grouped.items()])
    return write_splits(out_dir, MEDICATION_QA, splits, split_method=TRAIN_ONLY, extra={"medsins_only": True})
