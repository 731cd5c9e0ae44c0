"""``ContaminationReport``: ``contamination.json`` of a run folder.

Written by ``medsbench contam RUN --against CORPUS...`` (:mod:`medsbench.contam`), read by the board
(:mod:`medsbench.board.ingest`), both through :class:`medsbench.records.folder.RunFolder`. It records
which of the run's items overlap the corpora by the decontamination rule of
:mod:`medsbench.ins.decontam` (the corpora described with each file's sha256, the rule's settings,
per flagged item its reasons and the first corpus record that matched), and per task the scores on
the clean items, on the contaminated items and their difference with a 95% bootstrap CI (the two
item sets are disjoint: each is resampled within itself), in both scoring modes.
"""

from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import Field

from medsbench.records.base import Record, load_model, save_model
from medsbench.records.results import CI, Bootstrap

TEXTS = ("input", "input+gold")


class CorpusFile(Record):
    path: str
    sha256: str
    records: int  # records read (rows, instances, lines)
    texts: int  # texts checked (a record's parts and, with several parts, their join)


class CorpusSource(Record):
    """One ``--against`` argument."""

    path: str
    kind: Literal["mixture", "task", "jsonl", "text", "hf_dataset", "folder"]
    files: list[CorpusFile] = Field(default_factory=list)


class ContamRule(Record):
    """The overlap rule as applied (see :mod:`medsbench.ins.decontam`)."""

    text: Literal["input", "input+gold"] = "input"  # the input; or also the input joined with the gold answers
    ngram: int
    ngram_han: int
    ngram_kana: int
    near: bool
    threshold: float
    max_ngram_test_freq: int | None  # n-grams in more of the run's items than this are boilerplate
    ignored_ngrams: int = 0  # boilerplate n-grams dropped from the index of the run's items
    ignored_cjk_ngrams: int = 0
    ignored_ngrams_with_gold: int | None = None  # input+gold: the boilerplate n-grams of the joined texts' index


class FirstMatch(Record):
    """The first corpus record (in the order read) that overlaps an item."""

    corpus: int  # index into ``ContaminationReport.corpora``
    file: str
    record: int  # 1-based record number in that file


class ItemFlag(Record):
    task_id: str
    id: str
    reasons: list[str]  # of medsbench.ins.decontam.REASONS, in rule order
    first: FirstMatch


class SubsetScore(Record):
    """A task's scores on one subset of its items, both modes, with 95% bootstrap CIs."""

    n: int  # items scored (strict)
    n_reference: int  # items the official script counts
    metrics: dict[str, float]
    reference: dict[str, float]
    ci: dict[str, CI] = Field(default_factory=dict)
    reference_ci: dict[str, CI] = Field(default_factory=dict)


class Difference(Record):
    """Clean minus contaminated, per metric, with the CI of the difference (each subset resampled apart)."""

    metrics: dict[str, float]
    reference: dict[str, float]
    ci: dict[str, CI] = Field(default_factory=dict)
    reference_ci: dict[str, CI] = Field(default_factory=dict)


class TaskContamination(Record):
    category: str
    metric: str  # the task's primary metric
    n_items: int  # items of the run (failed ones included)
    n_contaminated: int
    n_failed: int = 0  # failed items: in neither score
    clean: SubsetScore | None = None  # None: no clean item was scored
    contaminated: SubsetScore | None = None
    difference: Difference | None = None  # None unless both subsets have items


class CategoryClean(Record):
    """The clean macro average of a category (the mean of its tasks' clean scores)."""

    tasks: list[str]  # tasks with a clean score
    without_clean: list[str] = Field(default_factory=list)  # every scored item contaminated
    metrics: dict[str, float]
    reference: dict[str, float]


class ContaminationReport(Record):
    SCHEMA: ClassVar[int] = 1

    schema_version: int = 1
    medsbench_version: str
    created: str
    run: str  # the run folder's name
    predictions_sha256: str  # of the predictions.jsonl whose items were checked and scored
    rule: ContamRule
    corpora: list[CorpusSource]
    n_items: int
    n_contaminated: int
    items: list[ItemFlag] = Field(default_factory=list)  # the contaminated items only
    tasks: dict[str, TaskContamination] = Field(default_factory=dict)
    categories: dict[str, CategoryClean] = Field(default_factory=dict)
    bootstrap: Bootstrap
    seconds: float | None = None  # wall time of the check

    def flagged(self) -> set[tuple[str, str]]:
        """(task id, instance id) of every contaminated item."""
        return {(f.task_id, f.id) for f in self.items}

    def save(self, path: str | os.PathLike) -> None:
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ContaminationReport:
        return load_model(cls, path, "contamination report")
