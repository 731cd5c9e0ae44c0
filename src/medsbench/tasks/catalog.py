"""The MedS-Bench task catalog (``catalog.yaml``) and the order of task ids; task folders are scanned in
``medsbench.tasks.workspace``."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.settings import read_settings

# The 19 MedS-Ins task categories (the vocabulary of a task file's "Categories").
# MCQA tasks are "Question Answering" in MedS-Ins terms.
INS_CATEGORIES: tuple[str, ...] = (
    "Question Answering",
    "Text Summarization",
    "Information Extraction",
    "Explanation",
    "Rationale",
    "Named Entity Recognition",
    "Diagnosis",
    "Treatment Planning",
    "Clinical Outcome Prediction",
    "Text Classification",
    "Fact Verification",
    "Natural Language Inference",
    "Text Retrieval",
    "Translation",
    "Dialogue",
    "Intent Identification",
    "Word Relation Classification",
    "Sentence Composition Analysis",
    "Wrong Candidate Generation",
)

# MedS-Bench category key -> the MedS-Ins category our converters write.
INS_CATEGORY_OF = {
    "mcqa": "Question Answering",
    "summarization": "Text Summarization",
    "information_extraction": "Information Extraction",
    "explanation": "Explanation",
    "rationale": "Rationale",
    "ner": "Named Entity Recognition",
    "diagnosis": "Diagnosis",
    "treatment_planning": "Treatment Planning",
    "clinical_outcome": "Clinical Outcome Prediction",
    "text_classification": "Text Classification",
    "fact_verification": "Fact Verification",
    "nli": "Natural Language Inference",
}

_POOLED = "pooled:"
_LAST = 1 << 30  # sort key of ids without a task number (e.g. board rows such as "pooled:ner"): after every task


def task_order(task_id: str) -> tuple[int, str]:
    """Sort key of a task id: by the number its digits spell (``task2`` < ``task10``), then by the id.

    Ids without digits and pooled board rows (``pooled:...``) sort after every
    numbered task, alphabetically. Free-form ids with digits sort by them
    (``bc2gm_ner`` as 2), as the MedS-Ins builder has always ordered its inputs.
    """
    digits = "".join(ch for ch in task_id if ch.isdigit())
    if not digits or task_id.startswith(_POOLED):
        return (_LAST, task_id)
    return (int(digits), task_id)


LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "fr": "French", "ru": "Russian", "es": "Spanish"}
LANGUAGE_CODES = {v.lower(): k for k, v in LANGUAGE_NAMES.items()}


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    shots: int
    max_new_tokens: int
    scorer: str | None = None  # the default scorer of the category's tasks (medsbench.metrics.registry)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    slug: str
    title: str
    category: str
    dataset: str
    language: str
    availability: str
    shots: int
    max_new_tokens: int
    source: str | None = None
    note: str | None = None
    scorer: str | None = None  # the registered scorer (medsbench.metrics.registry); default: the category's
    labels: tuple[str, ...] = ()  # the task's own closed label set, where its scorer's labels do not cover it
    name: str = ""  # the stable human name (pubmedqa, medqa_usmle, bc5cdr_chem); default: the slug

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.slug)

    def file_name(self, split: str = "test") -> str:
        """The workspace file name of this task's split, e.g. ``task57_medqa_en.test.json``."""
        return f"{self.id}_{self.slug}.{split}.json"


@dataclass(frozen=True)
class Catalog:
    version: int
    categories: dict[str, Category]
    tasks: dict[str, CatalogEntry]

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.tasks

    def __getitem__(self, task_id: str) -> CatalogEntry:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise MedsbenchError(f"unknown task id '{task_id}' (see `medsbench data catalog`)") from None

    def get(self, task_id: str) -> CatalogEntry | None:
        return self.tasks.get(task_id)

    @functools.cached_property
    def _by_name(self) -> dict[str, CatalogEntry]:
        """Task names and slugs (lower case) -> entries: every name a user may write for a task."""
        out: dict[str, CatalogEntry] = {}
        for e in self.tasks.values():
            for key in (e.name, e.slug):
                out.setdefault(key.lower(), e)
        return out

    def find(self, token: str) -> CatalogEntry | None:
        """The task a token names: its id (``task123``), its name (``pubmedqa``) or its file slug."""
        return self.tasks.get(token) or self._by_name.get(token.lower())

    def suggest(self, token: str, extra: tuple[str, ...] = ()) -> list[str]:
        """Close matches of a mistyped task id, name or category (at most three)."""
        words = [*self.tasks, *(e.name for e in self.tasks.values()), *self.categories, *extra]
        return difflib.get_close_matches(token.lower(), words, n=3, cutoff=0.6)

    def by_category(self, category: str) -> list[CatalogEntry]:
        return [t for t in self.tasks.values() if t.category == category]

    def select(self, selection: str | list[str]) -> list[CatalogEntry]:
        """Resolve ``task57,ner,all`` style selections (task ids, category keys, ``all``)."""
        items = selection.split(",") if isinstance(selection, str) else list(selection)
        chosen: dict[str, CatalogEntry] = {}
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item == "all":
                chosen.update(self.tasks)
            elif item in self.categories:
                chosen.update({t.id: t for t in self.by_category(item)})
            elif (entry := self.find(item)) is not None:
                chosen[entry.id] = entry
            else:
                near = self.suggest(item, ("all", "available", "quick"))
                hint = f"did you mean {' or '.join(near)}? " if near else ""
                raise MedsbenchError(
                    f"unknown task or category '{item}': {hint}(task ids or names such as task123 / pubmedqa, categories: "
                    f"{', '.join(self.categories)}, all, available or quick; `medsbench data catalog` lists them)"
                )
        return sorted(chosen.values(), key=lambda t: task_order(t.id))


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """A catalog from the mapping of a ``catalog.yaml``."""
    cats = {k: Category(key=k, **v) for k, v in data["categories"].items()}
    tasks: dict[str, CatalogEntry] = {}
    for row in data["tasks"]:
        cat = cats[row["category"]]
        row = dict(row)
        row.setdefault("shots", cat.shots)
        row.setdefault("max_new_tokens", cat.max_new_tokens)
        row["scorer"] = row.get("scorer") or cat.scorer
        row["labels"] = tuple(str(x) for x in row.get("labels") or ())
        tasks[row["id"]] = CatalogEntry(**row)
    return Catalog(version=int(data["version"]), categories=cats, tasks=tasks)


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged ``catalog.yaml``, parsed once."""
    return parse_catalog(read_settings(resources.files("medsbench.tasks").joinpath("catalog.yaml"), "task catalog"))


def catalog() -> Catalog:
    """The packaged MedS-Bench catalog (cached)."""
    return load_catalog()
