"""Shared pieces of the NER converters (IOB, brat, DDI): gold format, splits, task files.

Gold answers follow the official MedS-Bench NER files: the entity strings in order of
first appearance, de-duplicated case-insensitively, joined by ", " and closed with a
period (``"aspirin, ibuprofen."``); a sentence without entities gets the official
sentinel ``"There is no related enetity."`` -- misspelt on purpose: the official scorer
removes every ".", lower-cases, maps exactly "there is no related enetity" to the empty
set and otherwise takes ``text[:-1].split(", ")``. With these two shapes a gold file used
as predictions scores 100 under the official scorer (and under our strict one), and an
honest "no entity" answer is the empty set rather than a bogus one-element set.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medsbench.fileio import stable_seed
from medsbench.sources.registry import DistinctInputs, TaskSpec, write_splits
from medsbench.tasks.catalog import CatalogEntry, catalog
from medsbench.tasks.format import Instance

NO_ENTITY = "There is no related enetity."
NER_CATEGORY = "Named Entity Recognition"

# Detokenisation (IOB corpora): no space before closing punctuation, none after opening
# brackets. The rule looks only at adjacent token pairs, so an entity detokenised on its
# own is always a substring of its detokenised sentence.
_NO_SPACE_BEFORE = frozenset({".", ",", ";", ":", "?", "!", ")", "]", "}", "%"})
_NO_SPACE_AFTER = frozenset({"(", "[", "{"})


def detokenize(tokens: Sequence[str]) -> str:
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if i and tok not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(tok)
    return "".join(out)


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def unique_entities(entities: Iterable[str]) -> list[str]:
    """Order of first appearance, case-insensitive de-duplication, empty strings dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for ent in entities:
        ent = normalize_space(ent)
        key = ent.lower()
        if ent and key not in seen:
            seen.add(key)
            out.append(ent)
    return out


def ner_gold(entities: Iterable[str]) -> str:
    ents = unique_entities(entities)
    return ", ".join(ents) + "." if ents else NO_ENTITY


def ner_definition(description: str) -> str:
    return (
        f"Given a sentence, recognize every mention of {description} in it. There might be several "
        'correct answers: list them separated by ", " and end with a period. If there is none, '
        f'output "{NO_ENTITY}".'
    )


def describe_types(types: Sequence[str]) -> str:
    """'Chemical' -> 'a chemical'; several types -> 'a cell or organism substance'."""
    names = [t.replace("_", " ").replace("-", " ").lower() for t in types]
    if not names:
        return "a named entity"
    return "a " + " or ".join(names)


@dataclass
class NerItem:
    id: str
    text: str
    entities: list[str] = field(default_factory=list)


@dataclass
class NerTask:
    """Where one NER task's files go and how they are described."""

    task_id: str
    slug: str
    description: str  # what to recognise, e.g. "a chemical"
    source: str
    url: str
    license: str
    entry: CatalogEntry | None = None

    @classmethod
    def of(cls, task_id: str, slug: str | None = None, **kw) -> NerTask:
        entry = catalog().get(task_id)
        return cls(task_id=task_id, slug=slug or (entry.slug if entry else task_id), entry=entry, **kw)

    def spec(self) -> TaskSpec:
        """This task as the split writer's ``TaskSpec`` (files ``<task_id>.<split>.json`` outside the catalog)."""
        return TaskSpec(task_id=self.task_id, slug=self.slug, definition=ner_definition(self.description), source=self.source,
                        url=self.url, license=self.license, entry=self.entry, category=NER_CATEGORY, file_stem=self.task_id)

    def file_name(self, split: str) -> str:
        return self.spec().file_name(split)


def split_train_test(
    train: Iterable[NerItem], test: Iterable[NerItem]
) -> tuple[list[NerItem], list[NerItem]]:
    """The converters' one split rule (``registry.DistinctInputs``) on sentences: test first, then train."""
    kept = DistinctInputs().lists({"test": test, "train": train}, text=lambda item: item.text)
    return kept["train"], kept["test"]


def sample_items(items: list[NerItem], n: int | None, salt: str) -> list[NerItem]:
    """A seeded random sample of ``n`` items kept in file order (all items when n is None)."""
    if n is None or int(n) >= len(items):
        return items
    rng = random.Random(stable_seed("sample", salt, int(n)))
    keep = set(rng.sample(range(len(items)), int(n)))
    return [it for i, it in enumerate(items) if i in keep]


def write_ner_task(
    out_dir: Path,
    task: NerTask,
    splits: dict[str, list[NerItem]],
    *,
    split_method: str,
    extra: dict | None = None,
) -> list[Path]:
    """Write one file per non-empty split (``registry.write_splits``); returns the paths."""
    instances = {split: [Instance(id=it.id, input=it.text, output=[ner_gold(it.entities)], output_was_str=True) for it in items]
                 for split, items in splits.items()}
    info = {"gold_format": "comma-separated entities + '.', or 'There is no related enetity.'", **(extra or {})}
    return write_splits(out_dir, task.spec(), instances, split_method=split_method, extra=info)
