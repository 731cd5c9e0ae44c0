"""MedQuAD (NIH consumer health QA, XML documents; a zip of them or the unpacked folders) -> MedS-Ins task103.

Each ``<QAPair>`` with a non-empty ``<Answer>`` gives question -> answer, whitespace
collapsed (the XML keeps the web pages' layout). Pairs asking the very same question
(e.g. "What is (are) X ?" in both GARD and GHR) are merged into one instance whose
answers are all acceptable references. Instance ids are ``<subset>/<file>#<qid>`` of the
first pair (qids repeat across the split CancerGov files).

A MedS-Ins training task (no MedS-Bench test); the release has no split, so questions go
9:1 by a hash of the instance id and the test file serves extra evaluation.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._qa import Splits, TaskSpec, instance, no_options, norm_space, write_splits
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source

ZIP_NAME = "MedQuAD_answered_subsets_xml.zip"
TASK = TaskSpec(
    task_id="task103",
    slug="medquad_consumer_qa",
    definition=(
        "You are given a consumer's question about a disease, a gene, a drug or a health topic. Answer it "
        "with comprehensive, accurate details, as a trustworthy health information website would."
    ),
    source="MedQuAD (Ben Abacha and Demner-Fushman 2019)",
    url="https://github.com/abachaa/MedQuAD",
    license="CC BY 4.0 (answers are NIH website text)",
    category="Question Answering",
    language="en",
)


def _documents(raw_dir: Path) -> Iterator[tuple[str, bytes]]:
    """(``<subset>/<file>`` without .xml, XML bytes) from the zip or from unpacked folders, sorted."""
    path = raw_dir / ZIP_NAME
    if path.is_file():
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise MedsbenchError("not a zip file", where=str(path)) from None
        with zf:
            for name in sorted(n for n in zf.namelist() if n.endswith(".xml")):
                yield name[: -len(".xml")], zf.read(name)
        return
    files = sorted(raw_dir.glob("*_QA*/*.xml"))
    if not files:
        raise MedsbenchError(f"expected {ZIP_NAME} or the MedQuAD <n>_<Source>_QA/*.xml folders", where=str(raw_dir))
    for file in files:
        yield f"{file.parent.name}/{file.stem}", file.read_bytes()


def read_pairs(raw_dir: Path) -> Iterator[tuple[str, str, str]]:
    """(instance id, question, answer) of every answered QA pair."""
    for doc, data in _documents(raw_dir):
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise MedsbenchError(f"invalid XML: {exc}", where=f"{raw_dir}:{doc}.xml") from None
        for pair in root.iter("QAPair"):
            question, answer = pair.find("Question"), pair.find("Answer")
            q = norm_space("".join(question.itertext())) if question is not None else ""
            a = norm_space("".join(answer.itertext())) if answer is not None else ""
            if q and a:
                yield f"{doc}#{question.get('qid') or pair.get('pid')}", q, a


@register_source("medquad", description="MedQuAD consumer health QA -> MedS-Ins task103 (hash split)", raw_folder="medquad")
def medquad(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("medquad", options)
    grouped: dict[str, tuple[str, list[str]]] = {}
    for item_id, question, answer in read_pairs(raw_dir):
        _, answers = grouped.setdefault(question, (item_id, []))
        if answer not in answers:
            answers.append(answer)
    if not grouped:
        raise MedsbenchError("no answered <QAPair> in the MedQuAD documents", where=str(raw_dir))
    splits = Splits()
    for question, (item_id, answers) in grouped.items():
        getattr(splits, hash_split(item_id, salt=TASK.task_id)).append(instance(item_id, question, answers))
    extra = {"medsins_only": True, "alternative_answers": "a question asked by several pages lists every answer"}
    return write_splits(out_dir, TASK, splits, split_method=HASH_SPLIT_NOTE, extra=extra)
