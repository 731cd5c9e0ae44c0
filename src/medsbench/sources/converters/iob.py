"""IOB/BIO NER corpora (``token<TAB>tag`` tsv, blank line between sentences) -> NER tasks.

``iob_ner`` is generic: point it at any folder of such files and it builds a task without
code changes. Split files are recognised by name: ``train``/``devel``/``dev``/``valid``
feed the train split, ``test`` the test split (as the stem, ``test.tsv``, or as the
suffix, ``AnEM.test``); with no test file every sentence is split 9:1 by a hash of its
id. Tags may be IOB2 (``B-X``/``I-X``/``O``), IOB1 (an entity may start with ``I-X``),
IOBES (``E-``/``S-``) or untyped ``B``/``I``; extra middle columns
(CoNLL style) are ignored, ``-DOCSTART-`` lines skipped.

Text: tokens are re-joined with one space, except no space before ``. , ; : ? ! ) ] } %``
and none after ``( [ {``. Entity strings go through the same pair-wise rule, so every gold
entity is a substring of its input (the official files keep tokenizer spacing such as
"child ' s" too). Gold format: see ``_ner.py``.

Catalog tasks built here: task126 (BC5CDR chemical) and task127 (BC5CDR disease). The
paper samples 1,500 test sentences; we write every test sentence unless ``sample=N`` is
given (a seeded sample). NCBI-disease, BC2GM and BioNLP13-CG feed MedS-Ins NER tasks with
their own ids (``ncbi_disease_ner``...) and also get a test file for extra evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._ner import NerItem, NerTask, describe_types, detokenize, sample_items, split_train_test, write_ner_task
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source

IOB_SUFFIXES = (".tsv", ".iob", ".bio", ".conll")
SPLIT_OF_STEM = {"train": "train", "training": "train", "devel": "train", "dev": "train", "valid": "train",
                 "validation": "train", "test": "test", "testing": "test"}
MTL_URL = "https://github.com/cambridgeltl/MTL-Bioinformatics-2016"
MTL_LICENSE = "CC BY 4.0 (MTL-Bioinformatics-2016 conversion); underlying corpus terms apply"
_TAG_RE = re.compile(r"^(?:(O)|([BIES])(?:[-_](.+))?)$")


@dataclass
class IobSentence:
    tokens: list[str]
    entities: list[tuple[str, str]]  # (type, detokenised text) in order
    line: int  # first line in the file (1-based)


def _parse_tag(tag: str, where: str) -> tuple[str, str]:
    m = _TAG_RE.match(tag)
    if not m:
        raise MedsbenchError(f"tag '{tag}' is not IOB (expected O, B-X or I-X)", where=where)
    return ("O", "") if m.group(1) else (m.group(2), m.group(3) or "")


def read_iob(path: Path) -> list[IobSentence]:
    """Sentences of one IOB file with their entities (tolerates IOB1, IOBES, stray I- starts)."""
    sentences: list[IobSentence] = []
    tokens: list[str] = []
    spans: list[tuple[str, int, int]] = []  # (type, start, end) token indices
    open_span: list | None = None
    start_line = 1

    def close() -> None:
        nonlocal open_span
        if open_span is not None:
            spans.append(tuple(open_span))
            open_span = None

    def flush() -> None:
        nonlocal tokens, spans
        close()
        if tokens:
            ents = [(t, detokenize(tokens[s:e])) for t, s, e in spans]
            sentences.append(IobSentence(tokens, ents, start_line))
        tokens, spans = [], []

    try:
        fh = open(path, encoding="utf-8")
    except UnicodeDecodeError:  # pragma: no cover - open() does not decode yet
        raise MedsbenchError("not UTF-8 text", where=str(path)) from None
    with fh:
        try:
            for lineno, raw in enumerate(fh, 1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    flush()
                    continue
                if line.startswith("-DOCSTART-"):
                    continue
                fields = line.split("\t") if "\t" in line else line.split()
                where = f"{path}:{lineno}"
                if len(fields) < 2 or not fields[0].strip():
                    raise MedsbenchError("expected 'token<TAB>tag' (an IOB/BIO file?)", where=where)
                token, (prefix, etype) = fields[0].strip(), _parse_tag(fields[-1].strip(), where)
                if not tokens:
                    start_line = lineno
                i = len(tokens)
                tokens.append(token)
                if prefix == "O":
                    close()
                elif prefix in ("B", "S") or open_span is None or open_span[0] != etype:
                    close()  # IOB1 / stray I-: an I- of a new type starts an entity
                    open_span = [etype, i, i + 1]
                else:
                    open_span[2] = i + 1
                if prefix in ("S", "E"):
                    close()
        except UnicodeDecodeError:
            raise MedsbenchError("not UTF-8 text", where=str(path)) from None
    flush()
    return sentences


def split_name(path: Path) -> str:
    """The part of an IOB file name that names its split: ``test`` for ``test.tsv`` and ``AnEM.test``."""
    suffix = path.suffix.lower()
    return suffix[1:] if suffix[1:] in SPLIT_OF_STEM else path.stem.lower()


def _file_label(path: Path) -> str:
    """The file's part of an instance id: its stem, or its whole name when the suffix names the split."""
    return path.stem if path.suffix.lower() in IOB_SUFFIXES else path.name


def find_iob_files(raw_dir: Path) -> list[Path]:
    """The IOB files of a corpus folder (or of its single sub-folder holding them)."""

    def files_in(folder: Path) -> list[Path]:
        return sorted(
            p for p in folder.iterdir()
            if p.is_file() and (p.suffix.lower() in IOB_SUFFIXES or p.suffix.lower()[1:] in SPLIT_OF_STEM)
        )

    found = files_in(raw_dir)
    if found:
        return found
    subs = [d for d in sorted(raw_dir.iterdir()) if d.is_dir() and files_in(d)]
    if len(subs) == 1:
        return files_in(subs[0])
    if subs:
        names = ", ".join(d.name for d in subs)
        raise MedsbenchError(f"several IOB folders here ({names}): point at one of them", where=str(raw_dir))
    raise MedsbenchError(
        "no IOB files (train/devel/test.tsv with token<TAB>tag lines): is this the right dataset folder?",
        where=str(raw_dir),
    )


def _select_types(found: set[str], entity: str | None, where: str) -> list[str]:
    if not entity:
        return sorted(found)
    wanted = [e.strip() for e in str(entity).split(",") if e.strip()]
    by_lower = {t.lower(): t for t in found}
    missing = [w for w in wanted if w.lower() not in by_lower]
    if missing:
        raise MedsbenchError(
            f"entity type {', '.join(missing)} not in this corpus (found: {', '.join(sorted(found)) or 'none'})",
            where=where,
        )
    return [by_lower[w.lower()] for w in wanted]


@dataclass(frozen=True)
class NewTask:
    """A task the generic ``iob_ner`` converter names from its options (what to find comes from the corpus)."""

    task_id: str | None = None
    name: str | None = None


def convert_iob_folder(
    folder: Path,
    out_dir: Path,
    task: NerTask | NewTask,
    *,
    entity: str | None = None,
    sample: int | None = None,
    with_entities_only: bool = False,
    extra: dict | None = None,
) -> list[Path]:
    """Build one NER task from an IOB folder; a :class:`NewTask` is described from the corpus's entity types.

    ``with_entities_only``: keep only the sentences that mention one of the chosen types
    (for one rare type in a many-type corpus, where most sentences would otherwise be empty).
    """
    order = list(SPLIT_OF_STEM)  # train files first, then devel, then test, then other names
    files = sorted(find_iob_files(folder), key=lambda p: (order.index(split_name(p)) if split_name(p) in order else len(order), p.name))
    corpus = {p: read_iob(p) for p in files}
    found = {t for sents in corpus.values() for s in sents for t, _ in s.entities}
    types = _select_types(found, entity, str(folder))
    if isinstance(task, NewTask):
        task_id, name = task.task_id, task.name
        slug = _slug(name or folder.name)
        task = NerTask.of(task_id or f"{slug}_ner", name and _slug(name), description=describe_types(types),
                          source=folder.name, url=str(folder), license="see the corpus licence")
    keep = set(types)
    roles = {p: SPLIT_OF_STEM.get(split_name(p)) for p in files}
    official = "test" in roles.values()
    train: list[NerItem] = []
    test: list[NerItem] = []
    for path, sents in corpus.items():
        for index, sent in enumerate(sents):
            item = NerItem(
                id=f"{task.task_id}:{_file_label(path)}:{index:06d}",
                text=detokenize(sent.tokens),
                entities=[text for t, text in sent.entities if t in keep],
            )
            if with_entities_only and not item.entities:
                continue
            role = roles[path] if official else hash_split(item.id, salt=task.task_id)
            # Files not named test (train, devel, or any other name) are training data.
            (test if role == "test" else train).append(item)
    train, test = split_train_test(train, test)
    test = sample_items(test, sample, task.task_id)
    method = (
        "official split files: test = " + ", ".join(p.name for p in files if roles[p] == "test")
        + "; train = the other files minus any sentence also in test"
        if official
        else HASH_SPLIT_NOTE
    )
    info = {"entity_types": types, "test_sample": sample, **(extra or {})}
    if with_entities_only:
        info["sentences"] = "only sentences that mention one of the entity types"
    return write_ner_task(out_dir, task, {"test": test, "train": train}, split_method=method, extra=info)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not slug:
        raise MedsbenchError(f"cannot make a task name from '{text}'")
    return slug


@register_source(
    "iob_ner",
    description="Any IOB/BIO NER corpus (token<TAB>tag tsv files) -> an NER task (--task-id, --name, --entity)",
    generic=True,
)
def iob_ner(
    raw_dir: Path,
    out_dir: Path,
    task_id: str | None = None,
    name: str | None = None,
    entity: str | None = None,
    sample: int | None = None,
    slug: str | None = None,
) -> list[Path]:
    # ``slug`` = ``name`` for library callers (registry.convert's own first parameter is ``name``)
    return convert_iob_folder(raw_dir, out_dir, NewTask(task_id, name or slug), entity=entity, sample=sample)


def _subfolder(raw_dir: Path, name: str) -> Path:
    folder = raw_dir / name
    if not folder.is_dir():
        raise MedsbenchError(f"expected the folder {name}/ here: is this the right dataset folder?", where=str(raw_dir))
    return folder


def _bc5cdr(raw_dir: Path, out_dir: Path, task_id: str, folder: str, kind: str, sample: int | None) -> list[Path]:
    task = NerTask.of(task_id, description=f"a {kind.lower()}", source="BC5CDR (BioCreative V CDR)",
                      url=MTL_URL, license=MTL_LICENSE)
    return convert_iob_folder(_subfolder(raw_dir, folder), out_dir, task, entity=kind, sample=sample)


@register_source("bc5cdr_chem", description="BC5CDR chemical NER (IOB) -> task126", raw_folder="bc5cdr", tasks=["task126"])
def bc5cdr_chem(raw_dir: Path, out_dir: Path, sample: int | None = None, **_: object) -> list[Path]:
    return _bc5cdr(raw_dir, out_dir, "task126", "BC5CDR-chem-IOB", "Chemical", sample)


@register_source("bc5cdr_disease", description="BC5CDR disease NER (IOB) -> task127", raw_folder="bc5cdr", tasks=["task127"])
def bc5cdr_disease(raw_dir: Path, out_dir: Path, sample: int | None = None, **_: object) -> list[Path]:
    return _bc5cdr(raw_dir, out_dir, "task127", "BC5CDR-disease-IOB", "Disease", sample)


@register_source("ncbi_disease", description="NCBI-disease NER (IOB) -> MedS-Ins ncbi_disease_ner", raw_folder="ncbi_disease")
def ncbi_disease(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    task = NerTask.of("ncbi_disease_ner", description="a disease", source="NCBI disease corpus", url=MTL_URL,
                      license=MTL_LICENSE)
    return convert_iob_folder(_subfolder(raw_dir, "NCBI-disease-IOB"), out_dir, task, entity="Disease")


@register_source("bc2gm", description="BC2GM gene mention NER (IOB) -> MedS-Ins bc2gm_ner", raw_folder="bc2gm")
def bc2gm(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    task = NerTask.of("bc2gm_ner", description="a gene or protein", source="BioCreative II gene mention",
                      url=MTL_URL, license=MTL_LICENSE)
    return convert_iob_folder(_subfolder(raw_dir, "BC2GM-IOB"), out_dir, task, entity="GENE")


# BioNLP13-CG has 16 types; like MedS-Ins' task35/task36 (built from AnEM in anem.py) these ask for
# cells and organism substances, under local ids.
_BIONLP13CG_TASKS = {"Cell": ("bionlp13cg_cell_ner", "a body cell"),
                     "Organism_substance": ("bionlp13cg_organism_substance_ner", "an organism substance in the body")}


@register_source("bionlp13cg", description="BioNLP13-CG NER (IOB) -> cell and organism-substance NER tasks",
                 raw_folder="bionlp13cg")
def bionlp13cg(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    folder = _subfolder(raw_dir, "BioNLP13CG-IOB")
    written: list[Path] = []
    for etype, (task_id, desc) in _BIONLP13CG_TASKS.items():
        task = NerTask.of(task_id, description=desc, source="BioNLP 2013 Cancer Genetics", url=MTL_URL,
                          license="CC BY-SA 3.0 (NaCTeM annotations); MTL conversion CC BY 4.0")
        written += convert_iob_folder(folder, out_dir, task, entity=etype)
    return written
