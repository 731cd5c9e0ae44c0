"""DDI corpus 2013 (DrugBank + MedLine XML inside the official zip) -> drug NER task.

A MedS-Ins training task (``ddi_drug_ner``; not a MedS-Bench test task) plus a test file
from the official "Test for DrugNER task" folder for extra evaluation. The zip is read in
place with ``zipfile``. Every entity type counts as a drug mention (drug, brand, group,
drug_n) unless ``entity`` names some. Entity strings come from the sentence text at
``charOffset`` (discontinuous offsets: the annotated ``text``). Gold format: ``_ner.py``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._ner import NerItem, NerTask, normalize_space, split_train_test, write_ner_task
from medsbench.sources.registry import register_source, require_file

DDI_TYPES = ("drug", "brand", "group", "drug_n")


def _entity_text(sentence: str, ent: ET.Element) -> str:
    offset = ent.get("charOffset", "")
    if ";" not in offset and "-" in offset:
        a, b = (int(x) for x in offset.split("-"))
        return sentence[a : b + 1]  # DDI offsets are inclusive
    return ent.get("text", "")


def read_ddi_zip(path: Path, types: set[str]) -> dict[str, list[NerItem]]:
    """``{"train": [...], "test": [...]}`` sentence items from the official zip."""
    out: dict[str, list[NerItem]] = {"train": [], "test": []}
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise MedsbenchError("not a zip file", where=str(path)) from None
    with zf:
        for name in sorted(zf.namelist()):
            if not name.endswith(".xml"):
                continue
            if "/Train/" in name:
                split = "train"
            elif "/Test for DrugNER task/" in name:
                split = "test"
            else:
                continue  # the DDI-extraction test set is for relations, not NER
            try:
                root = ET.fromstring(zf.read(name))
            except ET.ParseError as exc:
                raise MedsbenchError(f"invalid XML: {exc}", where=f"{path}:{name}") from None
            for sent in root.iter("sentence"):
                text = sent.get("text", "")
                ents = [_entity_text(text, e) for e in sent.iter("entity") if e.get("type") in types]
                out[split].append(NerItem(id=f"ddi_drug_ner:{sent.get('id')}", text=normalize_space(text),
                                          entities=[normalize_space(e) for e in ents]))
    if not out["train"] or not out["test"]:
        raise MedsbenchError("no DDICorpus/Train or 'Test for DrugNER task' XML in the zip", where=str(path))
    return out


@register_source("ddi_corpus", description="DDI corpus 2013 drug NER (zip of XML) -> MedS-Ins ddi_drug_ner",
                 raw_folder="ddi_corpus")
def ddi_corpus(raw_dir: Path, out_dir: Path, entity: str | None = None, **_: object) -> list[Path]:
    path = require_file(raw_dir, "DDICorpus-2013.zip")
    types = {t.strip().lower() for t in entity.split(",")} if entity else set(DDI_TYPES)
    if not types <= set(DDI_TYPES):
        raise MedsbenchError(f"unknown DDI entity type(s) {sorted(types - set(DDI_TYPES))} (known: {', '.join(DDI_TYPES)})")
    items = read_ddi_zip(path, types)
    train, test = split_train_test(items["train"], items["test"])
    task = NerTask.of("ddi_drug_ner", description="a drug (generic name, brand name or drug group)",
                      source="DDI corpus 2013", url="https://github.com/isegura/DDICorpus",
                      license="CC BY-NC 4.0 (non-commercial use only)")
    method = "official split: train = DDICorpus/Train, test = 'Test for DrugNER task' minus sentences in train"
    return write_ner_task(out_dir, task, {"test": test, "train": train}, split_method=method,
                          extra={"entity_types": sorted(types)})
