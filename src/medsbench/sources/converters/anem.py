"""AnEM (Anatomical Entity Mention corpus, CoNLL/IOB2 files ``AnEM.train``/``AnEM.test``) -> MedS-Ins NER.

Two MedS-Ins training tasks built on this corpus (SNI tasks 1486/1487): task35 recognises
body cells (type ``Cell``) and task36 organism substances (type ``Organism_substance``).
Each keeps only the sentences that mention its type (about 1 sentence in 10 does), and
the gold lists every mention in the ``_ner.py`` format (SNI asked for one of them). The
official train/test files are kept as splits; the test files serve extra evaluation.
The annotations are CC BY-SA 3.0: the licence and the attribution travel in every task
file's ``medsbench`` block (``license``, ``attribution``) and from there into mixtures.
"""

from __future__ import annotations

from pathlib import Path

from medsbench.sources.converters._ner import NerTask
from medsbench.sources.converters.iob import convert_iob_folder
from medsbench.sources.registry import register_source, require_file

ANEM_LICENSE = "CC BY-SA 3.0 (AnEM annotations; share-alike: derived data keeps this licence)"
ANEM_ATTRIBUTION = "Ohta, Pyysalo, Tsujii, Ananiadou 2012, AnEM corpus, http://www.nactem.ac.uk/anatomy/"
ANEM_URL = "http://www.nactem.ac.uk/anatomy/"
# task id -> (AnEM entity type, what to recognise)
ANEM_TASKS = {
    "task35": ("Cell", "a body cell"),
    "task36": ("Organism_substance", "an organism substance in the body (such as blood, serum or urine)"),
}


@register_source("anem", description="AnEM anatomical NER (IOB2) -> MedS-Ins task35 (cells), task36 (organism substances)",
                 raw_folder="anem")
def anem(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    require_file(raw_dir, "AnEM.test")
    require_file(raw_dir, "AnEM.train")
    written: list[Path] = []
    for task_id, (etype, description) in ANEM_TASKS.items():
        slug = f"anem_{etype.lower()}_ner"
        task = NerTask.of(task_id, slug, description=description, source="AnEM 1.0.4", url=ANEM_URL,
                          license=ANEM_LICENSE)
        written += convert_iob_folder(raw_dir, out_dir, task, entity=etype, with_entities_only=True,
                                      extra={"attribution": ANEM_ATTRIBUTION, "medsins_only": True})
    return written
