"""Data-quality audit of task files: what a score on them can and cannot mean.

Per task file (``audit_file``), streamed once:

* instance count; instances without a usable ``input`` / ``output``;
* for tasks whose scorer reads a label from a gold (closed-label scorers:
  MCQA option letters, yes/no/maybe, NLI, fact, outcome, diagnosis, treatment,
  HoC label sets; not tasks scored as text, such as the task100 justifications):
  the gold label distribution, the majority-class baseline (percent) and a
  degenerate flag (one label covers >= 95%, or a single label), using
  :mod:`medsbench.tasks.labels`; the label is the scorer's own reading of the
  gold (:attr:`medsbench.metrics.Scorer.gold_label`, the rule strict scoring
  and the results' majority baseline use), and golds it cannot read are counted;
* duplicated inputs, and inputs repeated with *different* golds (count and the
  worst example);
* gold spans with unbalanced brackets in NER and information extraction
  (truncated annotations);
* test/train overlap (exact input after whitespace normalisation) when both
  splits of a task are given, or the train split lies beside the test file.

Findings never raise; only an unreadable file does (``MedsbenchError``).
``audit_paths`` collects those as errors so one bad file does not hide the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medsbench.errors import MedsbenchError
from medsbench.fileio import text_key
from medsbench.tasks.catalog import INS_CATEGORY_OF, catalog, task_order
from medsbench.tasks.format import (
    Instance,
    iter_instances,
    read_meta,
    split_of,
    task_id_of,
)
from medsbench.tasks.labels import is_degenerate, label_distribution, majority_baseline
from medsbench.metrics.registry import Scorer, scorer_for_task
from medsbench.tasks.validate import task_files_in
from medsbench.tasks.workspace import find_task_files

SCHEMA_VERSION = 1
# Categories whose golds are copied spans (where a truncated annotation shows as an unbalanced bracket).
SPAN_CATEGORIES = frozenset({"ner", "information_extraction"})
DEGENERATE_THRESHOLD = 0.95
# A "closed-label" file with this many distinct golds, or whose golds are mostly unreadable to
# its scorer, is free text (e.g. a generative NLI or justification task filed under a
# classification category, MedQuAD answers under QA): no label statistics for it.
_OPEN_MIN_LABELS = 60
_OPEN_SHARE = 0.5
_BENCH_CATEGORY_OF = {v: k for k, v in INS_CATEGORY_OF.items()}
_PAIRS = {")": "(", "]": "[", "}": "{"}


class Conflict(BaseModel):
    """An input that occurs several times with different golds."""

    id: str = Field(description="instance id of its first occurrence")
    repeats: int = Field(description="how many instances share this input")
    distinct_golds: int


class TaskAudit(BaseModel):
    """The audit of one task file (``medsbench data audit --json`` prints a list of these)."""

    schema_version: int = SCHEMA_VERSION
    file: str
    task_id: str | None
    split: str
    category: str | None = Field(description="MedS-Bench category key (catalog, else the file's metadata)")
    instances: int = 0
    missing_input: int = 0
    missing_output: int = 0
    closed_label: bool = False
    unlabeled_golds: int | None = Field(
        default=None, description="closed-label golds the task's scorer reads no label from (strict mode cannot score them)")
    open_ended: bool = Field(default=False, description="closed-label category, but the golds are free text")
    n_labels: int | None = None
    label_distribution: dict[str, int] | None = None
    majority_label: str | None = None
    majority_baseline: float | None = Field(default=None, description="percent accuracy of always answering the majority label")
    degenerate: bool = False
    duplicate_inputs: int = Field(default=0, description="instances whose input already occurred earlier in the file")
    conflicting_inputs: int = Field(default=0, description="distinct inputs that occur with more than one gold")
    worst_conflict: Conflict | None = None
    unbalanced_golds: int | None = Field(default=None, description="NER/IE instances whose gold has unbalanced brackets")
    unbalanced_example: str | None = None
    train_file: str | None = None
    train_overlap: int | None = Field(default=None, description="test instances whose input occurs in the train split")
    train_overlap_pct: float | None = None

    def findings(self) -> list[str]:
        """One short human-readable line per problem found (empty when the file looks clean)."""
        out: list[str] = []
        if self.missing_input:
            out.append(f"{self.missing_input} instance(s) without input")
        if self.missing_output:
            out.append(f"{self.missing_output} instance(s) without output")
        if self.unlabeled_golds:
            out.append(f"{self.unlabeled_golds} gold(s) without a label the scorer can read")
        if self.degenerate:
            out.append(
                f"degenerate labels: '{_short(self.majority_label)}' is {self.majority_baseline:.1f}% "
                f"({self.n_labels} distinct label(s))"
            )
        if self.conflicting_inputs and self.worst_conflict:
            w = self.worst_conflict
            out.append(
                f"{self.conflicting_inputs} input(s) with different golds (worst: id {w.id}, "
                f"{w.repeats} copies, {w.distinct_golds} golds)"
            )
        elif self.duplicate_inputs:
            out.append(f"{self.duplicate_inputs} repeated input(s) (same gold)")
        if self.unbalanced_golds:
            out.append(f"{self.unbalanced_golds} gold(s) with unbalanced brackets (e.g. id {self.unbalanced_example})")
        if self.train_overlap:
            out.append(f"{self.train_overlap} test input(s) also in train ({self.train_overlap_pct:.1f}%)")
        return out


class AuditReport(BaseModel):
    """Audits of every readable file, and one line per file that could not be read."""

    schema_version: int = SCHEMA_VERSION
    tasks: list[TaskAudit] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def _short(text: str | None, n: int = 40) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def _norm(text: str) -> str:
    return " ".join(text.split()).strip().rstrip(".").strip().lower()


def brackets_balanced(text: str) -> bool:
    """True when (), [] and {} nest and close properly in ``text``."""
    stack: list[str] = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in _PAIRS and (not stack or stack.pop() != _PAIRS[ch]):
            return False
    return not stack


def _digest(text: str) -> bytes:
    return text_key(text, normalise=True)


def _closed_scorer(task_id: str | None, category: str | None) -> Scorer | None:
    """The task's scorer when it reads a label from each gold (closed-label; never a text scorer)."""

    scorer = scorer_for_task(task_id or "", category)
    return scorer if scorer is not None and scorer.gold_label is not None and not scorer.is_text else None


def _category_of(task_id: str | None, meta: dict[str, Any]) -> str | None:
    entry = catalog().get(task_id) if task_id else None
    if entry is not None:
        return entry.category
    ours = meta.get("medsbench")
    if isinstance(ours, dict) and ours.get("bench_category") in catalog().categories:
        return str(ours["bench_category"])
    cats = meta.get("Categories")
    cats = [cats] if isinstance(cats, str) else cats if isinstance(cats, list) else []
    for c in cats:
        if c in _BENCH_CATEGORY_OF:
            return _BENCH_CATEGORY_OF[c]
    return None


def _usable_input(inst: Instance) -> bool:
    return isinstance(inst.input, str) and bool(inst.input.strip())


def _golds(inst: Instance) -> list[str] | None:
    out = inst.output
    if not isinstance(out, list) or not out or not all(isinstance(o, str) for o in out):
        return None
    return out if any(o.strip() for o in out) else None


def _train_inputs(path: Path) -> set[bytes]:
    return {_digest(inst.input) for inst in iter_instances(path) if _usable_input(inst)}


def audit_file(path: str | os.PathLike, *, train: str | os.PathLike | None = None) -> TaskAudit:
    """Audit one task file; ``train`` is the same task's train split for the overlap check.

    Raises ``MedsbenchError`` (one line) only when the file cannot be read.
    """
    path = Path(path)
    meta = read_meta(path)
    tid = task_id_of(meta, path)
    category = _category_of(tid, meta)
    result = TaskAudit(file=str(path), task_id=tid, split=split_of(meta, path), category=category)
    closed = _closed_scorer(tid, category)
    spans = category in SPAN_CATEGORIES
    labels: list[str] = []
    seen: dict[bytes, list[Any]] = {}  # input digest -> [first id, count, {gold digests}]
    unbalanced = 0
    unlabeled = 0
    for inst in iter_instances(path):
        result.instances += 1
        has_input = _usable_input(inst)
        golds = _golds(inst)
        result.missing_input += not has_input
        result.missing_output += golds is None
        if golds is not None and closed is not None:
            label = closed.label_of(golds[0], inst.input)
            if label is None:
                unlabeled += 1
            else:
                labels.append(label)
        if golds is not None and spans and not all(brackets_balanced(g) for g in golds):
            unbalanced += 1
            if result.unbalanced_example is None:
                result.unbalanced_example = inst.id
        if has_input:
            key = _digest(inst.input)
            gold_key = _digest("\x1f".join(_norm(g) for g in golds)) if golds is not None else b""
            entry = seen.get(key)
            if entry is None:
                seen[key] = [inst.id, 1, {gold_key}]
            else:
                entry[1] += 1
                entry[2].add(gold_key)
                result.duplicate_inputs += 1
    conflicts = [e for e in seen.values() if len(e[2]) > 1]
    result.conflicting_inputs = len(conflicts)
    if conflicts:
        worst = max(conflicts, key=lambda e: (e[1], len(e[2])))
        result.worst_conflict = Conflict(id=worst[0], repeats=worst[1], distinct_golds=len(worst[2]))
    if spans:
        result.unbalanced_golds = unbalanced
    if closed is not None and unlabeled > _OPEN_SHARE * (unlabeled + len(labels)):
        result.open_ended = True  # mostly golds the scorer reads no label from: free text (e.g. MedQuAD answers)
    elif closed is not None:
        result.unlabeled_golds = unlabeled
    if closed is not None and labels and not result.open_ended:
        counts = label_distribution(labels)
        result.n_labels = len(counts)
        if len(counts) >= _OPEN_MIN_LABELS and len(counts) >= _OPEN_SHARE * len(labels):
            result.open_ended = True
        else:
            result.closed_label = True
            result.label_distribution = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
            result.majority_label, baseline = majority_baseline(labels)
            result.majority_baseline = round(baseline, 2) if baseline is not None else None
            result.degenerate = is_degenerate(labels, DEGENERATE_THRESHOLD)
    if train is not None and result.split == "test":
        train_keys = _train_inputs(Path(train))
        result.train_file = str(train)
        result.train_overlap = sum(1 for key in seen if key in train_keys)
        n_inputs = len(seen)
        result.train_overlap_pct = round(100.0 * result.train_overlap / n_inputs, 2) if n_inputs else None
    return result


def _expand(paths: Iterable[str | os.PathLike], errors: list[str]) -> list[Path]:
    """Task files of each path (medsbench.tasks.validate.task_files_in); unreadable paths become report errors."""

    files: list[Path] = []
    for raw in paths:
        try:
            files.extend(task_files_in([raw]))
        except MedsbenchError as exc:
            errors.append(str(exc))
    return files


def audit_paths(paths: Iterable[str | os.PathLike]) -> AuditReport:
    """Audit task files and folders; the train split of each test file is taken from the
    given files, else from the test file's folder (same task id)."""

    report = AuditReport()
    files = _expand(paths, report.errors)
    ids: dict[Path, tuple[str | None, str]] = {}
    trains: dict[str, Path] = {}
    for path in files:
        try:
            meta = read_meta(path)
        except MedsbenchError as exc:
            report.errors.append(str(exc))
            continue
        tid, split = task_id_of(meta, path), split_of(meta, path)
        ids[path] = (tid, split)
        if tid and split == "train":
            trains.setdefault(tid, path)
    beside: dict[Path, dict[str, dict[str, Path]]] = {}
    for path, (tid, split) in ids.items():
        train = None
        if tid and split == "test":
            train = trains.get(tid)
            if train is None:
                folder = path.parent
                if folder not in beside:
                    try:
                        beside[folder] = find_task_files(folder)
                    except MedsbenchError:
                        beside[folder] = {}
                train = beside[folder].get(tid, {}).get("train")
        try:
            report.tasks.append(audit_file(path, train=train))
        except MedsbenchError as exc:
            report.errors.append(str(exc))
    report.tasks.sort(key=lambda t: (task_order(t.task_id or "~"), t.split, t.file))
    return report
