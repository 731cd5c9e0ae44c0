"""brat standoff NER corpora (``<doc>.txt`` + ``<doc>.ann``) -> sentence-level NER tasks.

``brat_ner`` is generic: any folder of .txt/.ann pairs (or its single sub-folder holding
them). Only text-bound annotations (``T`` lines) are used; ``entity`` picks the types
(default all). Discontinuous spans are joined with one space.

Sentence splitting (a deliberately simple, documented rule): a sentence ends at a line
break, or at ``.``/``!``/``?`` followed by whitespace and an upper-case letter, a digit
or an opening bracket -- except when the word before is a single-letter initial
("E. Coli"), a common abbreviation (e.g., i.e., et al., sp., Fig., ...) or the break
would fall inside an annotated entity. Whitespace runs inside a sentence collapse to one
space, in the input and in the entity strings alike, so gold entities stay substrings.

Splits: lists of document ids in ``split/{train,devel,dev,test}.txt`` when the folder has
them (test = test list, train = the others), else 9:1 by a hash of the document id (so
one abstract never straddles train and test). Gold format: see ``_ner.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medsbench.errors import MedsbenchError
from medsbench.sources.converters._ner import (
    NerItem,
    NerTask,
    describe_types,
    normalize_space,
    split_train_test,
    write_ner_task,
)
from medsbench.sources.registry import HASH_SPLIT_NOTE, hash_split, register_source
from medsbench.sources.converters.iob import _select_types, _slug

_CANDIDATE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])|\s*\n\s*")
_ABBREV = frozenset(
    "e.g. i.e. et al. sp. spp. ssp. subsp. var. cf. fig. figs. vs. approx. ca. no. nos. dr. mr. mrs. st. inc. ltd. "
    "co. resp. ref. refs. vol. pp. ed. eds. jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec. str.".split()
)
_SPLIT_ROLES = {"train": "train", "devel": "train", "dev": "train", "valid": "train", "test": "test"}


@dataclass
class BratEntity:
    type: str
    start: int
    end: int
    text: str


@dataclass
class BratDoc:
    id: str
    text: str
    entities: list[BratEntity]


def read_ann(path: Path, text: str) -> list[BratEntity]:
    ents: list[BratEntity] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("T"):
            continue
        where = f"{path}:{lineno}"
        parts = line.split("\t")
        if len(parts) < 2:
            raise MedsbenchError("expected 'T<n><TAB>Type start end<TAB>text'", where=where)
        head = parts[1].split(" ", 1)
        try:
            frags = [tuple(int(x) for x in frag.split()) for frag in head[1].split(";")]
            if any(len(f) != 2 or not 0 <= f[0] <= f[1] <= len(text) for f in frags):
                raise ValueError
        except (IndexError, ValueError):
            raise MedsbenchError(f"bad offsets '{parts[1]}' for a text of {len(text)} characters", where=where) from None
        span_text = " ".join(text[a:b] for a, b in frags)
        if len(frags) == 1 and len(parts) > 2 and parts[2] != span_text:
            raise MedsbenchError(f"annotation text '{parts[2]}' differs from the .txt at {parts[1]}", where=where)
        ents.append(BratEntity(head[0], frags[0][0], frags[-1][1], span_text))
    return ents


def read_brat_folder(folder: Path) -> list[BratDoc]:
    """Every document of a brat folder (a .txt without .ann has no annotations)."""
    anns = sorted(folder.glob("*.ann"))
    if not anns:
        subs = [d for d in sorted(folder.iterdir()) if d.is_dir() and any(d.glob("*.ann"))]
        if len(subs) == 1:
            return read_brat_folder(subs[0])
        raise MedsbenchError(
            "no brat standoff files (<doc>.txt + <doc>.ann) here: is this the right dataset folder?", where=str(folder)
        )
    docs: list[BratDoc] = []
    for txt in sorted(folder.glob("*.txt")):
        ann = txt.with_suffix(".ann")
        text = txt.read_text(encoding="utf-8")
        docs.append(BratDoc(txt.stem, text, read_ann(ann, text) if ann.exists() else []))
    orphans = [a.name for a in anns if not a.with_suffix(".txt").exists()]
    if orphans:
        raise MedsbenchError(f"{orphans[0]} has no matching .txt file", where=str(folder))
    return docs


def split_sentences(text: str, protected: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (rule in the module docstring)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _CANDIDATE.finditer(text):
        cut = m.start()
        if "\n" not in m.group():
            words = text[start:cut].split()
            last = words[-1].lower() if words else ""
            if (len(last) == 2 and last[0].isalpha()) or last in _ABBREV:
                continue
        if any(a < cut < b or a < m.end() < b for a, b in protected):
            continue
        spans.append((start, cut))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def doc_items(doc: BratDoc, types: set[str], id_prefix: str) -> list[NerItem]:
    ents = sorted((e for e in doc.entities if e.type in types), key=lambda e: (e.start, e.end))
    protected = [(e.start, e.end) for e in doc.entities]
    items = []
    for index, (a, b) in enumerate(split_sentences(doc.text, protected)):
        items.append(
            NerItem(
                id=f"{id_prefix}:{doc.id}:{index:03d}",
                text=normalize_space(doc.text[a:b]),
                entities=[e.text for e in ents if a <= e.start < b],
            )
        )
    return items


def read_split_lists(raw_dir: Path) -> dict[str, str] | None:
    """doc id -> train/test from split/*.txt lists, or None when the folder has none."""
    folder = raw_dir / "split"
    if not folder.is_dir():
        return None
    roles: dict[str, str] = {}
    for path in sorted(folder.glob("*.txt")):
        role = _SPLIT_ROLES.get(path.stem.lower())
        if role is None:
            continue
        for doc_id in path.read_text(encoding="utf-8").split():
            roles[doc_id] = role
    return roles or None


def convert_brat_folder(
    raw_dir: Path,
    out_dir: Path,
    task: NerTask | None,
    *,
    entity: str | None = None,
    task_id: str | None = None,
    name: str | None = None,
) -> list[Path]:

    docs = read_brat_folder(raw_dir)
    found = {e.type for d in docs for e in d.entities}
    types = _select_types(found, entity, str(raw_dir))
    if task is None:
        slug = _slug(name or raw_dir.name)
        task = NerTask.of(task_id or f"{slug}_ner", name and _slug(name), description=describe_types(types),
                          source=raw_dir.name, url=str(raw_dir), license="see the corpus licence")
    roles = read_split_lists(raw_dir)
    train: list[NerItem] = []
    test: list[NerItem] = []
    unlisted = 0
    for doc in docs:
        if roles is None:
            role = hash_split(doc.id, salt=task.task_id)
        else:
            listed = roles.get(doc.id)
            if listed is None:
                unlisted += 1
                continue
            role = listed
        (test if role == "test" else train).extend(doc_items(doc, set(types), task.task_id))
    train, test = split_train_test(train, test)
    if roles is None:
        method = HASH_SPLIT_NOTE + " (document ids; sentences follow their document)"
    else:
        method = "official document lists split/*.txt: test = test list, train = train + devel minus sentences in test"
    extra = {"entity_types": types, "unlisted_documents_skipped": unlisted}
    return write_ner_task(out_dir, task, {"test": test, "train": train}, split_method=method, extra=extra)


@register_source(
    "brat_ner",
    description="Any brat standoff NER corpus (.txt + .ann) -> a sentence-level NER task (--task-id, --name, --entity)",
    generic=True,
)
def brat_ner(
    raw_dir: Path,
    out_dir: Path,
    task_id: str | None = None,
    name: str | None = None,
    entity: str | None = None,
    slug: str | None = None,
) -> list[Path]:
    # ``slug`` = ``name`` for library callers (registry.convert's own first parameter is ``name``)
    return convert_brat_folder(raw_dir, out_dir, None, entity=entity, task_id=task_id, name=name or slug)


@register_source("species800", description="Species-800 organism NER (brat) -> task128", raw_folder="species800",
                 tasks=["task128"])
def species800(raw_dir: Path, out_dir: Path, **_: object) -> list[Path]:
    if not (raw_dir / "split" / "test.txt").exists():
        raise MedsbenchError("expected split/test.txt here: is this the Species-800 folder?", where=str(raw_dir))
    task = NerTask.of("task128", description="an organism (species)", source="Species-800 (S800)",
                      url="https://species.jensenlab.org/", license="not stated (S800 distributed openly for research)")
    return convert_brat_folder(raw_dir, out_dir, task, entity="Species")
