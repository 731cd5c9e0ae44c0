"""Contamination-aware scores: which of a run's items a corpus contains, and the run's scores without them.

:func:`check_run` reads a run folder (through :class:`medsbench.records.folder.RunFolder`), checks
each item's input (and, with ``text="input+gold"``, in a second pass its input and gold answers
joined: an item is flagged when either overlaps) against the corpora
(:mod:`medsbench.contam.corpus`) by the decontamination rule of :mod:`medsbench.ins.decontam`
(:mod:`medsbench.contam.check`), scores the clean and the contaminated items apart
(:mod:`medsbench.metrics.subsets`) and writes ``contamination.json`` beside the run
(:class:`medsbench.records.contamination.ContaminationReport`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from medsbench.contam.check import Item, flag_items
from medsbench.contam.corpus import open_corpus
from medsbench.errors import MedsbenchError
from medsbench.ins.config import DecontamConfig
from medsbench.metrics.score import TaskFileLabels
from medsbench.metrics.subsets import contamination_scores
from medsbench.ins.decontam import REASONS
from medsbench.records.contamination import TEXTS, ContaminationReport, ItemFlag
from medsbench.records.folder import RunFolder
from medsbench.records.manifest import now
from medsbench.records.predictions import PredictionRow
from medsbench.records.results import Bootstrap
from medsbench import __version__


@dataclass(frozen=True)
class ContamOptions:
    """How ``medsbench contam`` checks a run (the rule's settings are ``decontam``'s, as ``ins build`` uses)."""

    text: str = "input"  # input | input+gold (the input, and the input joined with the gold answers)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    bootstrap: int = 1000
    seed: int = 0


def item_text(row: PredictionRow, text: str) -> str:
    """One text of an item: its input, or (``input+gold``) its input and gold answers joined with newlines."""
    if text == "input":
        return row.input or ""
    golds = row.references or ([row.reference] if row.reference is not None else [])
    return "\n".join([row.input or "", *golds])


def merge_flags(flags: Sequence[ItemFlag]) -> list[ItemFlag]:
    """One flag per item (an item checked as several texts): reasons joined, the earliest first match."""
    merged: dict[tuple[str, str], ItemFlag] = {}
    for f in flags:
        key = (f.task_id, f.id)
        have = merged.get(key)
        if have is None:
            merged[key] = f
            continue
        reasons = [r for r in REASONS if r in have.reasons or r in f.reasons]
        first = min((have.first, f.first), key=lambda m: (m.corpus, m.file, m.record))
        merged[key] = ItemFlag(task_id=f.task_id, id=f.id, reasons=reasons, first=first)
    return list(merged.values())


def run_items(rows: Sequence[PredictionRow], text: str, where: str) -> list[Item]:
    """The items to check (every row, failed ones too: a failed item is still flagged, never scored)."""
    if text not in TEXTS:
        raise MedsbenchError(f"--text must be one of {', '.join(TEXTS)}, got '{text}'")
    items = []
    for r in rows:
        if r.id is None:
            raise MedsbenchError(f"{r.task_id}: a row without an instance id; contamination flags name items by id",
                                 where=r.where or where)
        items.append(Item(r.task_id, r.id, item_text(r, text)))
    return items


def check_run(run_dir: str | os.PathLike[str], corpora: Sequence[str | os.PathLike[str]], options: ContamOptions | None = None,
              progress: Callable[[str], None] | None = None) -> ContaminationReport:
    """Flag the run's items found in ``corpora``, score clean and contaminated items; writes contamination.json."""

    options = options or ContamOptions()
    if not corpora:
        raise MedsbenchError("give at least one corpus: --against PATH")
    folder = RunFolder.of(run_dir)
    opened = [open_corpus(c) for c in corpora]  # every corpus is checked before any work
    t0 = time.perf_counter()
    with folder.lock():
        manifest = folder.manifest()
        rows = folder.predictions()
        sha = folder.predictions_sha256()
        items = run_items(rows, "input", str(folder.predictions_path))
        flags, rule = flag_items(items, opened, options.decontam, progress)
        if options.text == "input+gold":  # a second pass over the joined texts: flagged when either overlaps
            with_gold, gold_rule = flag_items(run_items(rows, options.text, str(folder.predictions_path)), opened,
                                              options.decontam, progress)
            flags = merge_flags([*flags, *with_gold])
            rule.ignored_ngrams_with_gold = gold_rule.ignored_ngrams
        rule.text = options.text  # type: ignore[assignment]
        flagged = {(f.task_id, f.id) for f in flags}
        tasks, categories = contamination_scores(rows, flagged, labels=TaskFileLabels(manifest.test_files()),
                                                 bootstrap=options.bootstrap, seed=options.seed)
        report = ContaminationReport(
            medsbench_version=__version__, created=now(), run=folder.name, predictions_sha256=sha, rule=rule,
            corpora=[c.describe() for c in opened], n_items=len(rows), n_contaminated=len(flags), items=flags,
            tasks=tasks, categories=categories, bootstrap=Bootstrap(resamples=options.bootstrap, seed=options.seed),
            seconds=round(time.perf_counter() - t0, 3))
        folder.save_contamination(report)
    return report


__all__ = ["ContamOptions", "check_run", "item_text", "merge_flags", "run_items"]
