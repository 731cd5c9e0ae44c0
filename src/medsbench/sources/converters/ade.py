"""ADE Corpus V2 (``DRUG-DOSE.rel``, ``DRUG-AE.rel``, ``ADE-NEG.txt``) -> task29 and MedS-Ins tasks 26/37.

* **task29** (MedS-Bench information extraction, drug dose): ``Sentence: <s>\\nDrug: <d>``
  -> the dose phrase of that drug (``DRUG-DOSE.rel``). One instance per (sentence, drug)
  pair; when a pair has several dose rows (17 of 250) every distinct dose is listed as an
  acceptable answer, the first in file order being the canonical one.
* **task26** (drug NER): a ``DRUG-AE.rel`` sentence -> every drug it relates to an
  adverse effect, in order of offset (``_ner.py`` gold format). Drugs without an
  adverse-effect relation are not annotated in this corpus, so the gold can miss them.
* **task37** (adverse drug event sentence classification): ``DRUG-AE.rel`` sentences ->
  ``adverse drug event``, ``ADE-NEG.txt`` sentences -> ``non-adverse drug event``.

Split: the corpus has none. Sentences go 9:1 by a hash of their PubMed id (one salt for
the three tasks), so an abstract never straddles train and test; a sentence found under
several PMIDs is test if any of them is. A sentence is therefore on the same side in all
three tasks: a task29 test sentence is never a task26/task37 training input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._ner import NerItem, NerTask, split_train_test, write_ner_task
from medsbench.sources.converters._qa import Splits, TaskSpec, instance, no_options, read_text, write_splits
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source, require_file

SALT = "ade_corpus_v2"
SOURCE = "ADE Corpus V2 (Gurulingappa et al. 2012)"
URL = "https://github.com/trunghlt/AdverseDrugReaction/tree/master/ADE-Corpus-V2"
LICENSE = "none stated (research corpus; cite Gurulingappa et al., JBI 2012); research use only"
SPLIT_METHOD = (
    HASH_SPLIT_NOTE + " of the PubMed id, one salt for task29/26/37: a sentence under several PMIDs is test "
    "if any of them is"
)
ADE, NON_ADE = "adverse drug event", "non-adverse drug event"

DOSE = TaskSpec.bench(
    "task29",
    definition=(
        "You are given a sentence from a medical case report and the name of a drug it mentions. Extract the "
        "dose of that drug as written in the sentence (an amount, a frequency or words such as \"high\"). "
        "If several doses are given, write one of them."
    ),
    source=SOURCE,
    url=URL,
    license=LICENSE,
)
CLASSIFICATION = TaskSpec(
    task_id="task37",
    slug="ade_sentence_classification",
    definition=(
        "You are given a sentence from a medical case report. Say whether it reports an adverse drug reaction "
        f'(a harmful or unpleasant effect of a medication). Answer "{ADE}" or "{NON_ADE}".'
    ),
    source=SOURCE,
    url=URL,
    license=LICENSE,
    category="Text Classification",
    language="en",
)


@dataclass(frozen=True)
class Relation:
    pmid: str
    sentence: str
    target: str  # the dose or the adverse effect
    drug: str
    drug_begin: int
    where: str


def read_relations(path: Path) -> Iterator[Relation]:
    """Rows of a ``PMID|sentence|target|begin|end|drug|begin|end`` file."""
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        where = f"{path}:{lineno}"
        if len(fields) != 8 or not fields[0].strip().isdigit() or not fields[6].strip().isdigit():
            raise MedsbenchError("expected PMID|sentence|text|begin|end|drug|begin|end", where=where)
        yield Relation(fields[0].strip(), fields[1].strip(), fields[2].strip(), fields[5].strip(), int(fields[6]), where)


def read_negatives(path: Path) -> Iterator[tuple[str, str]]:
    """(PMID, sentence) of ``ADE-NEG.txt`` lines ``PMID NEG sentence``."""
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        pmid, tag, sentence = (line.split(" ", 2) + ["", ""])[:3]
        if not pmid.isdigit() or tag != "NEG" or not sentence.strip():
            raise MedsbenchError("expected 'PMID NEG sentence'", where=f"{path}:{lineno}")
        yield pmid, sentence.strip()


class SentenceSides:
    """train/test of a sentence: test when any PMID it appears under hashes to test."""

    def __init__(self) -> None:
        self.pmids: dict[str, set[str]] = {}

    def add(self, pmid: str, sentence: str) -> None:
        self.pmids.setdefault(sentence, set()).add(pmid)

    def __getitem__(self, sentence: str) -> str:
        sides = {hash_split(p, salt=SALT) for p in self.pmids[sentence]}
        return "test" if "test" in sides else "train"


@register_source("ade_corpus_v2", raw_folder="ade_corpus_v2", tasks=("task29",),
                 description="ADE Corpus V2 -> task29 drug dose extraction + MedS-Ins task26 (drug NER), task37 (ADE sentences)")
def ade_corpus_v2(raw_dir: Path, out_dir: Path, **options: Any) -> list[Path]:
    no_options("ade_corpus_v2", options)
    doses = list(read_relations(require_file(raw_dir, "DRUG-DOSE.rel")))
    effects = list(read_relations(require_file(raw_dir, "DRUG-AE.rel")))
    negatives = list(read_negatives(require_file(raw_dir, "ADE-NEG.txt")))
    sides = SentenceSides()
    for rel in (*doses, *effects):
        sides.add(rel.pmid, rel.sentence)
    for pmid, sentence in negatives:
        sides.add(pmid, sentence)

    pairs: dict[tuple[str, str], list[str]] = {}
    for rel in doses:
        known = pairs.setdefault((rel.sentence, rel.drug), [])
        if rel.target and rel.target not in known:
            known.append(rel.target)
    dose = Splits()
    for n, ((sentence, drug), answers) in enumerate(pairs.items()):
        item = instance(f"dose{n:04d}", f"Sentence: {sentence}\nDrug: {drug}", answers)
        getattr(dose, sides[sentence]).append(item)

    drugs: dict[str, list[tuple[int, str]]] = {}
    for rel in effects:
        drugs.setdefault(rel.sentence, []).append((rel.drug_begin, rel.drug))
    ner: dict[str, list[NerItem]] = {"train": [], "test": []}
    classes = Splits()
    for n, (sentence, found) in enumerate(drugs.items()):
        ner[sides[sentence]].append(NerItem(f"ade{n:05d}", sentence, [d for _, d in sorted(found)]))
        getattr(classes, sides[sentence]).append(instance(f"ade{n:05d}", sentence, ADE))
    for n, (pmid, sentence) in enumerate(negatives):
        if sentence not in drugs:  # no sentence is in both files; a clash would keep the ADE label
            getattr(classes, sides[sentence]).append(instance(f"neg{n:05d}:{pmid}", sentence, NON_ADE))

    written = write_splits(out_dir, DOSE, dose, split_method=SPLIT_METHOD,
                           extra={"alternative_answers": "a pair with several doses lists each; the first is canonical"})
    train, test = split_train_test(ner["train"], ner["test"])
    task = NerTask.of("task26", "ade_drug_ner", description="a drug or medicine", source=SOURCE, url=URL, license=LICENSE)
    written += write_ner_task(out_dir, task, {"test": test, "train": train}, split_method=SPLIT_METHOD,
                              extra={"medsins_only": True, "annotation": "only drugs with an adverse-effect relation"})
    written += write_splits(out_dir, CLASSIFICATION, classes, split_method=SPLIT_METHOD, extra={"medsins_only": True})
    return written
