"""Score predictions: per-task metrics in both modes, confidence intervals, category averages.

:func:`score_predictions` is the library entry of ``medsbench score`` and what the eval runner
calls; it returns a :class:`medsbench.records.results.Results` record (``results.json``),
written by :func:`write_results`. Predictions are read only through
:func:`medsbench.records.read_predictions`; each task is scored by the scorer its catalog entry
names (:mod:`medsbench.metrics.registry`).

A failed item (``PredictionRow.error`` set: the backend gave up) is missing: it enters no
metric, is counted in ``n_failed`` and lowers ``coverage``; a task whose items all failed has
no metrics (empty ``metrics``), never a zero.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file
from medsbench.metrics import reference as ref_mode
from medsbench.metrics import strict as strict_mode
from medsbench.metrics.registry import KINDS, POOLED, POOLED_KIND, Scorer, metrics_from_sums, scorer_for_task
from medsbench.metrics.calibration import BINNING
from medsbench.metrics.loglik import macro_loglik, summarize_loglik
from medsbench.metrics.slices import average, category_slices, usage_of
from medsbench.metrics.stats import bootstrap_ci
from medsbench.metrics.text import bleu1, rouge_l
from medsbench.metrics.tokenize import tokenize_many
from medsbench.prices import Price
from medsbench.records.predictions import PredictionRow, check_unique, read_predictions, row_from
from medsbench.records.results import (
    Bootstrap,
    CategoryResult,
    InputFile,
    PooledResult,
    Results,
    TaskResult,
)
from medsbench.tasks.catalog import catalog
from medsbench.tasks.labels import is_degenerate, majority_baseline
from medsbench.tasks.catalog import task_order as _task_order
from medsbench import __version__
from medsbench.tasks.format import iter_instances
from medsbench.tasks.workspace import find_task_files

log = logging.getLogger(__name__)


@dataclass
class TaskItems:
    """Per-item statistics of one task in both modes (rows aligned with ``keys`` and ``rows``)."""

    task_id: str
    scorer: Scorer
    category: str
    language: str
    rows: list[PredictionRow]  # the scored rows (gold present, not failed), in file order
    keys: list[str]  # item identity for pairing: id, else input (+ occurrence)
    reference: np.ndarray  # (n, k_ref); rows of skipped items are all zero
    ref_counted: np.ndarray  # (n,) bool: the official script scores this item
    strict: np.ndarray  # (n, k_strict)
    parsed: np.ndarray  # (n,) bool
    empty: np.ndarray  # (n,) bool
    skipped_no_gold: int = 0
    n_failed: int = 0
    label_source: str | None = None  # where the strict label set came from (closed-label scorers)

    def reference_metrics(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        return self.scorer.reference_metrics(sums)

    def strict_metrics(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        return self.scorer.strict_metrics(sums)


# ------------------------------------------------------------------ text metrics


class TextScorer:
    """BLEU-1 / ROUGE-L for many (hyp, ref, language) pairs, tokenising each distinct text once."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str, str], int] = {}

    def add(self, hyp: str, ref: str, language: str) -> tuple[str, str, str]:
        key = (hyp, ref, language)
        self.pairs.setdefault(key, len(self.pairs))
        return key

    def run(self) -> dict[tuple[str, str, str], tuple[float, float]]:
        by_lang: dict[str, set[str]] = {}
        for hyp, ref, lang in self.pairs:
            texts = by_lang.setdefault(_tok_lang(lang), set())
            texts.add(hyp)
            texts.add(ref)
        tokens: dict[tuple[str, str], list[str]] = {}
        for lang, texts in by_lang.items():
            ordered = sorted(texts)
            for text, toks in zip(ordered, tokenize_many(ordered, lang)):
                tokens[(lang, text)] = toks
        out: dict[tuple[str, str, str], tuple[float, float]] = {}
        for hyp, ref, lang in self.pairs:
            tl = _tok_lang(lang)
            h_toks, r_toks = tokens[(tl, hyp)], tokens[(tl, ref)]
            b = bleu1(r_toks, h_toks)
            if tl in ("zh", "ja"):  # the script re-joins the same tokens with spaces for Rouge
                r = rouge_l(" ".join(h_toks), " ".join(r_toks))
            else:
                r = rouge_l(hyp, ref)
            out[(hyp, ref, lang)] = (b, 0.0 if r is None else r)  # Rouge raises on empty text: 0
        return out


def _tok_lang(language: str) -> str:
    return language if language in ("zh", "ja") else "en"


# ------------------------------------------------------------------------ scoring


def _resolve(task_id: str, rows: list[PredictionRow]) -> tuple[Scorer, str, str] | None:
    """(scorer, category, language) of a task: its catalog entry, else the rows' known category."""
    entry = catalog().get(task_id)
    scorer = scorer_for_task(entry or task_id, rows[0].category)
    if scorer is None:
        return None
    if entry is not None:
        return scorer, entry.category, entry.language
    return scorer, rows[0].category or "", rows[0].language or "en"


def _item_keys(rows: list[PredictionRow]) -> list[str]:
    seen: Counter[str] = Counter()
    keys = []
    for r in rows:
        base = f"id:{r.id}" if r.id is not None else f"input:{r.input or ''}"
        seen[base] += 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return keys


_ROW_FIELDS = frozenset(PredictionRow.model_fields) | {"GT"}


def as_rows(rows: Iterable[PredictionRow | dict[str, Any]]) -> list[PredictionRow]:
    """Prediction rows from records or in-memory dicts (validated like a file's lines; keys that are
    not ``PredictionRow`` fields, e.g. a caller's bookkeeping such as ``index``, are ignored)."""
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, PredictionRow):
            where = r.get("where") if isinstance(r, dict) else None
            r = row_from({k: v for k, v in r.items() if k in _ROW_FIELDS} if isinstance(r, dict) else r,
                         str(where or f"row {i + 1}"))
        out.append(r)
    return out


def score_items(
    rows: Sequence[PredictionRow | dict[str, Any]],
    *,
    strict_ids: bool = False,
    labels: Mapping[str, Iterable[str]] | None = None,
) -> tuple[dict[str, TaskItems], list[str], list[str]]:
    """Per-item statistics of every task: ({task_id: TaskItems}, unknown task ids, warnings).

    ``labels``: per task id, the gold answers (or labels) of the task's full test file; closed-label
    tasks take their strict label set from them (see :func:`task_label_set`).
    A task whose rows all failed is present with zero scored rows (``n_failed`` > 0).
    """
    by_task: dict[str, list[PredictionRow]] = {}
    for r in as_rows(rows):
        by_task.setdefault(r.task_id, []).append(r)
    cat = catalog()
    unknown = sorted(t for t in by_task if t not in cat)
    if unknown and strict_ids:
        raise MedsbenchError(f"task ids not in the catalog: {', '.join(unknown)} (drop --strict-ids to score the rest)")
    warnings: list[str] = []
    text = TextScorer()
    pending: list[tuple[TaskItems, list[Any], list[Any]]] = []
    result: dict[str, TaskItems] = {}
    for task_id, task_rows in by_task.items():
        resolved = _resolve(task_id, task_rows)
        if resolved is None:
            warnings.append(f"{task_id}: not in the catalog and no known category; not scored")
            continue
        scorer, category, language = resolved
        failed = [r for r in task_rows if r.failed]
        live = [r for r in task_rows if not r.failed]
        scored = [r for r in live if not ref_mode.is_na(r.reference)]
        no_gold = len(live) - len(scored)
        if failed:
            warnings.append(
                f"{task_id}: {len(failed)} failed item(s) missing from the scores "
                f"(coverage {len(scored)}/{len(scored) + len(failed)}); `medsbench eval --resume` retries them"
            )
        if no_gold:
            warnings.append(f"{task_id}: {no_gold} row(s) without a gold answer not scored")
        if not scored and not failed:
            continue
        if not scored:
            warnings.append(f"{task_id}: every item failed; the task has no metrics")
        n_missing = sum(1 for r in scored if r.output is None)
        if n_missing:
            warnings.append(f"{task_id}: {n_missing} missing (NaN/empty) output(s) counted as empty")
        items = _new_items(task_id, scorer, category, language, scored)
        if scorer.is_text:
            pending.append(_text_keys(items, text))
        else:
            given = labels.get(task_id) if labels is not None and scorer.extensible_labels else None
            task_labels, items.label_source = task_label_set(scorer, task_id, scored, given, warnings)
            _score_closed(items, task_labels)
        items.skipped_no_gold = no_gold
        items.n_failed = len(failed)
        result[task_id] = items
    if pending:
        scores = text.run()
        for items, ref_keys, strict_keys in pending:
            for i, key in enumerate(ref_keys):
                if key is not None:
                    bleu, rouge = scores[key]
                    items.reference[i] = (bleu, rouge, 1.0)
            for i, key in enumerate(strict_keys):
                bleu, rouge = scores[key]
                items.strict[i] = (bleu, rouge, 1.0)
    return result, unknown, warnings


def _new_items(task_id: str, scorer: Scorer, category: str, language: str, rows: list[PredictionRow]) -> TaskItems:
    """A task's items with zeroed statistics (every item counted and parsed until scored)."""
    n = len(rows)
    return TaskItems(
        task_id, scorer, category, language, rows, _item_keys(rows),
        reference=np.zeros((n, len(KINDS[scorer.reference_kind].columns))), ref_counted=np.ones(n, dtype=bool),
        strict=np.zeros((n, len(KINDS[scorer.strict_kind].columns))), parsed=np.ones(n, dtype=bool),
        empty=np.array([strict_mode.is_empty(r.output) for r in rows], dtype=bool),
    )


def _text_keys(items: TaskItems, text: TextScorer) -> tuple[TaskItems, list[Any], list[Any]]:
    """Queue a text task's (hypothesis, reference) pairs in ``text``: (items, reference keys, strict keys)."""
    scorer = items.scorer
    assert scorer.reference_pair is not None and scorer.strict_pair is not None
    ref_keys: list[Any] = []
    strict_keys: list[Any] = []
    for i, r in enumerate(items.rows):
        pair = scorer.reference_pair(r)
        if pair is None:
            items.ref_counted[i] = False
            ref_keys.append(None)
        else:
            ref_keys.append(text.add(pair[0], pair[1], items.language))
        s_pair = scorer.strict_pair(r)
        assert s_pair is not None
        strict_keys.append(text.add(s_pair[0], s_pair[1], items.language))
    return items, ref_keys, strict_keys


def _score_closed(items: TaskItems, labels: tuple[str, ...]) -> None:
    """Fill the statistics of an item scorer's task (strict mode with the task's label set)."""
    scorer = items.scorer
    assert scorer.reference is not None and scorer.strict is not None
    for i, r in enumerate(items.rows):
        row = scorer.reference(r)
        if row is None:
            items.ref_counted[i] = False
        else:
            items.reference[i] = row
        items.strict[i], items.parsed[i] = scorer.strict(r, labels)


def task_label_set(
    scorer: Scorer, task_id: str, rows: Sequence[PredictionRow], given: Iterable[str] | None, warnings: list[str]
) -> tuple[tuple[str, ...], str | None]:
    """The strict label set of a closed-label task and where it came from (None: no label set).

    The scorer's fixed labels, joined (scorers with ``extensible_labels``) by the task's own: the
    catalog's ``labels:`` and ``given`` (the golds of the full task file). Never the golds of the
    scored rows alone, which on a sample miss valid labels; only a gold outside every known label
    is added from the rows (extensible scorers: with a warning unless ``given`` was passed) or
    reported (fixed vocabularies: strict mode cannot score it).
    """
    if not (scorer.labels or scorer.extensible_labels):
        return (), None
    known = list(scorer.labels)
    parts = ["scorer"] if scorer.labels else []
    if scorer.extensible_labels:
        entry = catalog().get(task_id)
        if entry is not None and entry.labels:
            known += entry.labels
            parts.append("catalog")
        if given is not None:
            known += [lab for g in given if (lab := scorer.label_of(g))]
            parts.append("task file")
    labels = strict_mode.label_set(known)
    vocab = set(labels)
    outside = Counter(g for r in rows if (g := scorer.label_of(r.reference, r.input)) is not None and g not in vocab)
    if outside:
        example, n = next(iter(outside)), sum(outside.values())
        if scorer.extensible_labels:
            labels += tuple(outside)
            parts.append("scored golds")
            if given is None:
                warnings.append(
                    f"{task_id}: {n} gold answer(s) outside the known labels (e.g. '{example}'); their labels are "
                    "taken from the scored rows, so on a sample a valid label missing from it counts as a parse "
                    "failure (pass the task file's labels)"
                )
        else:
            warnings.append(
                f"{task_id}: {n} gold answer(s) outside the {scorer.name} label set "
                f"(e.g. '{example}'): strict mode cannot score them"
            )
    return labels, " + ".join(parts)


def pooled_rows(per_task: dict[str, TaskItems]) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """The summarization script's pooled groups (CT, MRI): {name: (member task ids, reference rows
    the script counts, strict rows)} over the member tasks present in ``per_task``."""
    out: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    for name, group in POOLED.items():
        present = [per_task[t] for t in group if t in per_task and per_task[t].keys]
        if present:
            out[name] = (
                [it.task_id for it in present],
                np.concatenate([it.reference[it.ref_counted] for it in present]),
                np.concatenate([it.strict for it in present]),
            )
    return out


def _round(values: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def _ci(values: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    return {k: (round(v[0], 4), round(v[1], 4)) for k, v in values.items()}


def source_of(task_id: str) -> str:
    """The source slice of a task: the dataset its catalog entry names, else the task id itself."""
    entry = catalog().get(task_id)
    return entry.dataset if entry is not None and entry.dataset else task_id


def summarize_task(items: TaskItems, *, bootstrap: int, seed: int) -> TaskResult:
    scorer = items.scorer
    n = len(items.keys)
    n_total = n + items.n_failed
    base: dict[str, Any] = {
        "category": items.category,
        "language": items.language,
        "source": source_of(items.task_id),
        "scorer": scorer.name,
        "n": n,
        "n_failed": items.n_failed,
        "coverage": round(n / n_total, 4) if n_total else 0.0,
        "metric": scorer.primary,
        "n_without_gold": items.skipped_no_gold,
    }
    if n == 0:  # every item failed: no number at all
        return TaskResult(**base, n_reference=0, metrics={}, reference={}, empty_rate=None)
    ref_rows = items.reference[items.ref_counted]
    caps = [r.hit_cap for r in items.rows if r.hit_cap is not None]
    out = TaskResult(
        **base,
        n_reference=int(items.ref_counted.sum()),
        metrics=_round(items.strict_metrics(items.strict.sum(axis=0))),
        reference=_round(items.reference_metrics(ref_rows.sum(axis=0))),
        parse_failure_rate=None if scorer.is_text else round(float((~items.parsed & ~items.empty).mean()), 4),
        empty_rate=round(float(items.empty.mean()), 4),
        hit_cap_rate=round(sum(caps) / len(caps), 4) if caps else None,
    )
    out.label_source = items.label_source
    if scorer.gold_label is not None and scorer.primary == "accuracy":  # a baseline in the metric's own terms
        golds = [g for r in items.rows if (g := scorer.label_of(r.reference, r.input)) is not None]
        label, percent = majority_baseline(golds)
        out.majority_label = label
        out.majority_baseline = None if percent is None else round(percent, 4)
        out.degenerate = is_degenerate(golds)
    if bootstrap > 0:
        out.ci = _ci(bootstrap_ci(items.strict, items.strict_metrics, resamples=bootstrap, seed=f"{seed}:{items.task_id}:strict"))
        if ref_rows.shape[0]:
            out.reference_ci = _ci(bootstrap_ci(
                ref_rows, items.reference_metrics, resamples=bootstrap, seed=f"{seed}:{items.task_id}:reference"))
    return out


@dataclass(frozen=True)
class RunProtocol:
    """How the scored predictions were made, for results.json: the prompt protocol's name and the
    run's deviations from the official scripts (a run folder's manifest: :meth:`of`)."""

    name: str | None
    deviations: tuple[str, ...] = ()

    @classmethod
    def of(cls, manifest: Any) -> RunProtocol | None:
        """From a :class:`medsbench.records.manifest.RunManifest` (None: no manifest, no protocol)."""
        return None if manifest is None else cls(manifest.protocol, tuple(manifest.deviations))


def score_predictions(
    rows_or_path: str | os.PathLike | Sequence[PredictionRow | dict[str, Any]],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    strict_ids: bool = False,
    format: str = "auto",
    protocol: RunProtocol | None = None,
    labels: Mapping[str, Iterable[str]] | None = None,
    price: Price | None = None,
) -> Results:
    """Score a predictions file (or rows) in reference and strict mode; returns the results record.

    ``labels``: per task id, the gold answers of the task's full test file (e.g.
    :func:`task_file_golds`), the source of closed-label tasks' label sets when the predictions
    cover only a sample; without them the scorer's and the catalog's labels are used. Each
    task's ``label_source`` in the results says which. ``price``: what the rows' tokens cost (the
    ``usage`` of each task and of the run, :func:`medsbench.metrics.slices.usage_of`).

    Raises :class:`MedsbenchError` when nothing can be scored (e.g. every task id is unknown).
    """

    inputs: list[InputFile] = []
    where = "predictions"
    if isinstance(rows_or_path, (str, os.PathLike)):
        rows = read_predictions(rows_or_path, format=format)
        inputs.append(InputFile(path=str(rows_or_path), sha256=sha256_file(rows_or_path)))
        where = str(rows_or_path)
    else:
        rows = as_rows(rows_or_path)
        if not rows:
            raise MedsbenchError("no predictions to score")
    check_unique(rows, where)
    per_task, unknown, warnings = score_items(rows, strict_ids=strict_ids, labels=labels)
    if not per_task:
        reason = f"task ids not in the catalog: {', '.join(unknown)}" if unknown else "no row has a gold answer"
        raise MedsbenchError(f"nothing to score: {reason} (see `medsbench data catalog`)", where=where)
    for w in warnings:
        log.info(w)
    tasks = {
        tid: summarize_task(items, bootstrap=bootstrap, seed=seed)
        for tid, items in sorted(per_task.items(), key=lambda kv: _task_order(kv[0]))
    }
    for tid, result in tasks.items():  # likelihood-scored rows: acc_norm and calibration per variant
        result.loglik = summarize_loglik(per_task[tid].rows, per_task[tid].scorer, tid, bootstrap=bootstrap, seed=seed)
    loglik = any(t.loglik is not None for t in tasks.values())
    categories = _categories(tasks, per_task, bootstrap=bootstrap, seed=seed, loglik=loglik)
    by_task: dict[str, list[PredictionRow]] = {}
    for r in rows:
        by_task.setdefault(r.task_id, []).append(r)
    for tid, t in tasks.items():
        t.usage = usage_of(by_task.get(tid, []), price)
    pooled: dict[str, PooledResult] = {}
    for name, (pool_tasks, ref_rows, strict_rows) in pooled_rows(per_task).items():
        pooled[name] = PooledResult(
            tasks=pool_tasks,
            n=int(strict_rows.shape[0]),
            metrics=_round(metrics_from_sums(POOLED_KIND, strict_rows.sum(axis=0), present_labels_only=True)),
            reference=_round(metrics_from_sums(POOLED_KIND, ref_rows.sum(axis=0))),
        )
    return Results(
        medsbench_version=__version__,
        inputs=inputs,
        n_rows=len(rows),
        n_failed=sum(it.n_failed for it in per_task.values()),
        tasks=tasks,
        categories=categories,
        pooled=pooled,
        unknown_task_ids=unknown,
        warnings=warnings,
        reference_deviations=list(ref_mode.DEVIATIONS),
        protocol=protocol.name if protocol is not None else None,
        protocol_deviations=list(protocol.deviations) if protocol is not None else [],
        bootstrap=Bootstrap(resamples=bootstrap, seed=seed, level=0.95),
        scoring="loglik" if loglik else "generate",
        calibration_binning=BINNING if loglik else None,
        usage=usage_of([r for r in rows if r.task_id in tasks], price),
        price=price,
    )


def _categories(tasks: dict[str, TaskResult], per_task: dict[str, TaskItems], *, bootstrap: int,
                seed: int, loglik: bool = False) -> dict[str, CategoryResult]:
    """Each category's macro average (the official one) with its CI, micro average and slices (and with
    ``loglik``, the macro average of each likelihood-scoring variant)."""
    categories: dict[str, CategoryResult] = {}
    cat = catalog()
    for category in dict.fromkeys(t.category for t in tasks.values()):
        members = {tid: t for tid, t in tasks.items() if t.category == category}
        scored = {tid: t for tid, t in members.items() if t.metrics}
        default = scorer_for_task(cat.categories[category]) if category in cat.categories else None
        items = [per_task[tid] for tid in scored]
        macro, micro, note = average(items, tasks, bootstrap=bootstrap, seed=f"{seed}:{category}")
        categories[category] = CategoryResult(
            n_tasks=len(scored),
            tasks=list(scored),
            missing_tasks=[tid for tid in members if tid not in scored],
            metric=default.primary if default is not None else None,
            metrics=macro.metrics,
            reference=macro.reference,
            n=macro.n,
            ci=macro.ci,
            reference_ci=macro.reference_ci,
            micro=micro,
            micro_note=note,
            slices=category_slices(category, items, tasks, bootstrap=bootstrap, seed=seed),
            loglik=macro_loglik(t.loglik for t in scored.values() if t.loglik is not None) if loglik else None,
        )
    return categories


def write_results(results: Results, path: str | os.PathLike) -> Path:
    """Write results.json atomically (through the record's one writer)."""
    path = Path(path)
    results.save(path)
    return path


def task_file_golds(path: str | os.PathLike) -> list[str]:
    """The gold answers (first target of each instance) of a task file: the ``labels`` of one task
    for :func:`score_predictions`."""

    return [inst.target for inst in iter_instances(path) if isinstance(inst.target, str) and inst.target.strip()]


class TaskFileLabels(Mapping[str, list[str]]):
    """The ``labels`` of :func:`score_predictions` from a task folder: each task's gold answers,
    read from its full test file when the task asks for them (closed-label tasks only)."""

    def __init__(self, test_files: Mapping[str, Path]) -> None:
        self._files = dict(test_files)
        self._read: dict[str, list[str]] = {}

    @classmethod
    def folder(cls, tasks_dir: str | os.PathLike) -> TaskFileLabels:
        """Every task's test file in a task folder."""

        return cls({tid: splits["test"] for tid, splits in find_task_files(Path(tasks_dir)).items() if "test" in splits})

    def __getitem__(self, task_id: str) -> list[str]:
        if task_id not in self._read:
            self._read[task_id] = task_file_golds(self._files[task_id])
        return self._read[task_id]

    def __iter__(self):
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)
