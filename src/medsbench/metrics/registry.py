"""The scorer registry: every way of scoring a task, registered once by name.

A :class:`Scorer` owns, as data, everything that differs between tasks and that any part of
medsbench needs to know about a metric: its per-item reference function (the official script's
semantics, :mod:`medsbench.metrics.reference`) and strict function (honest parsing,
:mod:`medsbench.metrics.strict`), the statistics kind each emits (:data:`KINDS`), its primary and
headline metrics and their display names, whether it scores free text (:attr:`Scorer.is_text`),
its label vocabulary, the answer prefix it strips, how a gold answer becomes a label
(:attr:`Scorer.gold_label`: the majority baseline, ``data audit``) and, through its kind, the
per-item verdict rule (:func:`medsbench.metrics.item_verdicts`). ``catalog.yaml`` names each
task's scorer (``scorer:`` per category, overridden per task where a task differs, e.g. task123,
task100); :func:`scorer_for_task` is the one lookup.

Statistics kinds: every item becomes a row of additive statistics, so a task's metric is a
function of the column sums (accuracy = correct / counted, micro F1 from summed TP/FP/FN,
macro F1 from per-label sums, BLEU/ROUGE means); bootstrap CIs and paired tests resample rows
and re-apply the same function. A scorer's *metric family* (:attr:`Scorer.family`) is the kind of
its reference statistics: ``accuracy``, ``bleu_rouge``, ``f1_micro`` or ``f1_macro``.

Primary metric, one per scorer (what a leaderboard ranks by, as the paper's leaderboard does):
``accuracy`` for closed answers (MCQA, IE, diagnosis, treatment, outcome, fact verification,
NLI), ``f1`` for NER (micro, entity sets) and multi-label classification (macro, HoC),
``rougeL`` for generated text (summarization, explanation, rationale, task100, task42); BLEU-1
is reported beside it as a headline metric.

Adding a metric: one module in :mod:`medsbench.metrics.scorers` that calls
:func:`register_scorer` (and :func:`register_kind` for new statistics), and the catalog line
that names it. Every module of that package is imported the first time the registry is asked.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.tasks.labels import HALLMARKS
from medsbench.tasks.catalog import Category, catalog

if TYPE_CHECKING:
    from medsbench.records.predictions import PredictionRow
    from medsbench.tasks.catalog import Category, CatalogEntry

StatRow = list[float]
Metrics = dict[str, np.ndarray]

# Pooled groups the official summarization script reports next to the tasks.
POOLED = {"CT": tuple(f"task{i}" for i in range(83, 89)), "MRI": tuple(f"task{i}" for i in range(89, 95))}
POOLED_KIND = "bleu_rouge"

# Display names of the metrics: long (board, captions) and short (CLI table columns).
METRIC_TITLES = {"accuracy": "accuracy", "bleu1": "BLEU-1", "rougeL": "ROUGE-L", "f1": "F1",
                 "precision": "precision", "recall": "recall"}
METRIC_SHORT = {"accuracy": "acc", "bleu1": "B1", "rougeL": "RL", "f1": "F1", "precision": "P", "recall": "R"}


def metric_title(key: str) -> str:
    """The display name of a metric key (``rougeL`` -> ``ROUGE-L``); unknown keys as they are."""
    return METRIC_TITLES.get(key, key)


def metric_short(keys: tuple[str, ...] | list[str]) -> str:
    """The short column name of metric keys (``("bleu1", "rougeL")`` -> ``B1/RL``)."""
    return "/".join(METRIC_SHORT.get(k, k) for k in keys)


# ------------------------------------------------------------------ statistics kinds


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (the scripts' and sklearn's zero_division=0)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _accuracy(s: np.ndarray, strict: bool) -> Metrics:
    return {"accuracy": 100 * _div(s[..., 0], s[..., 1])}


def _accuracy_f1(s: np.ndarray, strict: bool) -> Metrics:
    return {"accuracy": 100 * _div(s[..., 0], s[..., 1]), "f1": 100 * _div(s[..., 2], s[..., 1])}


def _bleu_rouge(s: np.ndarray, strict: bool) -> Metrics:
    return {"bleu1": 100 * _div(s[..., 0], s[..., 2]), "rougeL": 100 * _div(s[..., 1], s[..., 2])}


def _f1_micro(s: np.ndarray, strict: bool) -> Metrics:
    tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
    p = _div(tp, tp + fp)
    r = _div(tp, tp + fn)
    return {"f1": 100 * _div(2 * p * r, p + r), "precision": 100 * p, "recall": 100 * r}


def _f1_macro(s: np.ndarray, strict: bool) -> Metrics:
    n = len(HALLMARKS)
    tp, fp, fn = s[..., :n], s[..., n : 2 * n], s[..., 2 * n :]
    p = _div(tp, tp + fp)
    r = _div(tp, tp + fn)
    f = _div(2 * tp, 2 * tp + fp + fn)  # sklearn's per-label F1 (equals 2PR/(P+R), 0 when undefined)
    if strict:  # a label nobody predicted and no gold has carries no evidence
        used = (tp + fp + fn) > 0
        k = used.sum(axis=-1)

        def mean(x: np.ndarray) -> np.ndarray:
            return _div((x * used).sum(axis=-1), k)

    else:  # reference: sklearn average='macro' over all ten labels

        def mean(x: np.ndarray) -> np.ndarray:
            return x.mean(axis=-1)

    return {"f1": 100 * mean(f), "precision": 100 * mean(p), "recall": 100 * mean(r)}


def _correct(row: np.ndarray) -> int:
    """An accuracy item: correct when it counts as correct."""
    return int(row[0] > 0)


def _no_fp_fn_micro(row: np.ndarray) -> int:
    """An entity-set item: correct when it has no false positive and no false negative."""
    return int(float(row[1] + row[2]) == 0.0)


def _no_fp_fn_macro(row: np.ndarray) -> int:
    """A multi-label item: correct when no label is a false positive or a false negative."""
    return int(float(np.sum(row[len(row) // 3 :])) == 0.0)


@dataclass(frozen=True)
class Kind:
    """A kind of per-item statistics: its columns, the metrics computed from their sums, and the
    per-item verdict rule (1 correct, 0 incorrect; None: the kind has no verdict, e.g. BLEU/ROUGE)."""

    name: str
    columns: tuple[str, ...]
    compute: Callable[[np.ndarray, bool], Metrics]  # (column sums (..., k), strict) -> metrics
    verdict: Callable[[np.ndarray], int] | None = None
    names: tuple[tuple[str, str, str], ...] = ()  # display names of new metric keys: (key, title, short)

    def metrics(self, sums: np.ndarray, *, strict: bool = False) -> Metrics:
        return self.compute(np.asarray(sums, dtype=float), strict)


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Register a statistics kind under its name (once)."""
    if kind.name in KINDS:
        raise ValueError(f"statistics kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    for key, title, short in kind.names:
        METRIC_TITLES.setdefault(key, title)
        METRIC_SHORT.setdefault(key, short)
    return kind


for _kind in (
    Kind("accuracy", ("correct", "count"), _accuracy, _correct),
    Kind("accuracy_f1", ("correct", "count", "f1_sum"), _accuracy_f1, _correct),
    Kind("bleu_rouge", ("bleu", "rouge", "count"), _bleu_rouge),
    Kind("f1_micro", ("tp", "fp", "fn"), _f1_micro, _no_fp_fn_micro),
    Kind("f1_macro", tuple(f"{s}_{i}" for s in ("tp", "fp", "fn") for i in range(len(HALLMARKS))), _f1_macro,
         _no_fp_fn_macro),
):
    register_kind(_kind)


def metrics_from_sums(kind: str, sums: np.ndarray, *, present_labels_only: bool = False) -> Metrics:
    """Metrics (0-100) from column sums of a statistics kind; ``sums`` has shape (..., n_columns)."""
    return KINDS[kind].metrics(sums, strict=present_labels_only)


# ------------------------------------------------------------------------- scorers

ItemFn = Callable[["PredictionRow"], "StatRow | None"]
StrictFn = Callable[["PredictionRow", tuple[str, ...]], tuple[StatRow, bool]]
PairFn = Callable[["PredictionRow"], "tuple[str, str] | None"]
GoldLabelFn = Callable[[str, "str | None"], "str | None"]  # (gold answer, the item's input) -> label


@dataclass(frozen=True)
class Scorer:
    """How one kind of task is scored, in both modes, and what it knows about its answers.

    Item scorers set ``reference`` / ``strict`` (one statistics row per item; ``reference``
    returns None where the official script skips the item; ``strict`` receives the task's label
    set and also says whether an answer could be parsed). Text scorers set ``reference_pair`` /
    ``strict_pair`` (the hypothesis and reference texts BLEU-1 / ROUGE-L compare; None: skipped).

    Closed-label scorers set ``gold_label`` (the one rule that turns a gold answer into its label:
    strict scoring, the majority baseline and ``medsbench data audit`` all use it), ``labels``
    (the fixed vocabulary) and, where a task brings its own labels (catalog ``labels:``, the task
    file's golds), ``extensible_labels``.
    """

    name: str
    description: str
    reference_kind: str
    strict_kind: str
    primary: str
    headline: tuple[str, ...]
    reference: ItemFn | None = None
    strict: StrictFn | None = None
    reference_pair: PairFn | None = None
    strict_pair: PairFn | None = None
    labels: tuple[str, ...] = ()  # the fixed label vocabulary of strict mode
    extensible_labels: bool = False  # a task's own labels join ``labels`` (else golds outside them are reported)
    gold_label: GoldLabelFn | None = None  # closed-label scorers: the label of a gold answer (None: unreadable)
    answer_prefix: re.Pattern[str] | None = None  # the phrase before an answer ("The diagnosis result is"), stripped
    notes: tuple[str, ...] = field(default=())

    @property
    def is_text(self) -> bool:
        """Free text, scored by word overlap (BLEU-1 / ROUGE-L): no parsing, no per-item verdict."""
        return self.reference_pair is not None

    @property
    def family(self) -> str:
        """The metric family: the statistics kind of reference mode (accuracy, bleu_rouge, f1_micro, f1_macro)."""
        return self.reference_kind

    @property
    def column(self) -> str:
        """The short name of the headline metrics, as CLI tables head their column (``acc``, ``B1/RL``, ``F1``)."""
        return metric_short(self.headline)

    def label_of(self, gold: str | None, input_text: str | None = None) -> str | None:
        """The label of a gold answer; None for a scorer without labels or a gold it cannot read."""
        if self.gold_label is None or gold is None:
            return None
        return self.gold_label(gold, input_text) or None

    def verdicts(self, reference_row: np.ndarray | None, strict_row: np.ndarray) -> tuple[int | None, int | None]:
        """(reference, strict) verdict of one item from its statistics rows (None: no verdict)."""
        ref_rule, strict_rule = KINDS[self.reference_kind].verdict, KINDS[self.strict_kind].verdict
        ref = None if ref_rule is None or reference_row is None else ref_rule(reference_row)
        return ref, None if strict_rule is None else strict_rule(strict_row)

    def reference_metrics(self, sums: np.ndarray) -> Metrics:
        return KINDS[self.reference_kind].metrics(sums, strict=False)

    def strict_metrics(self, sums: np.ndarray) -> Metrics:
        return KINDS[self.strict_kind].metrics(sums, strict=True)


_SCORERS: dict[str, Scorer] = {}
_LOADED = threading.Event()
_LOADING = threading.Lock()


def register_scorer(scorer: Scorer) -> Scorer:
    """Register ``scorer`` under its name (once: a second registration of a name is an error)."""
    if scorer.name in _SCORERS:
        raise ValueError(f"scorer {scorer.name!r} is already registered")
    for kind in (scorer.reference_kind, scorer.strict_kind):
        if kind not in KINDS:
            raise ValueError(f"scorer {scorer.name!r}: unknown statistics kind {kind!r}")
    if scorer.is_text != (scorer.strict_pair is not None) or scorer.is_text == (scorer.reference is not None):
        raise ValueError(f"scorer {scorer.name!r}: give item functions or text pair functions, not both")
    probe = KINDS[scorer.strict_kind].metrics(np.zeros(len(KINDS[scorer.strict_kind].columns)), strict=True)
    if scorer.primary not in probe or not set(scorer.headline) <= set(probe):
        raise ValueError(f"scorer {scorer.name!r}: primary/headline metrics must be among {sorted(probe)}")
    _SCORERS[scorer.name] = scorer
    return scorer


def _load_scorer_modules() -> None:
    """Import every module of :mod:`medsbench.metrics.scorers` (each registers its scorers), once."""
    if _LOADED.is_set():
        return
    with _LOADING:
        if _LOADED.is_set():
            return
        package = importlib.import_module("medsbench.metrics.scorers")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package.__name__}.{info.name}")
        _LOADED.set()


def all_scorers() -> dict[str, Scorer]:
    """Every registered scorer by name."""
    _load_scorer_modules()
    return dict(_SCORERS)


def get_scorer(name: str) -> Scorer:
    _load_scorer_modules()
    try:
        return _SCORERS[name]
    except KeyError:
        raise MedsbenchError(f"unknown scorer '{name}' (registered: {', '.join(sorted(_SCORERS))})") from None


def scorer_for_task(task: CatalogEntry | Category | str, category: str | None = None) -> Scorer | None:
    """The scorer of a task: a :class:`CatalogEntry`, a catalog :class:`Category`, a catalog task
    id or category key; for a task the catalog does not know (a workspace task file, a prediction
    row), the scorer of its ``category``. None when neither is known.

    An entry that names no scorer (built outside ``catalog.yaml``) gets its category's.
    """

    cat = catalog()
    if isinstance(task, str):
        if task in cat:
            task = cat[task]
        elif task in cat.categories:
            task = cat.categories[task]
        elif category is not None and category in cat.categories:
            task = cat.categories[category]
        else:
            return None
    name = task.scorer
    if not name and not isinstance(task, Category):  # a workspace task: its category's scorer
        known = cat.categories.get(task.category)
        name = known.scorer if known is not None else None
    return get_scorer(name) if name else None


def _required(task: CatalogEntry | Category | str) -> Scorer:
    scorer = scorer_for_task(task)
    if scorer is None:
        if isinstance(task, str):
            raise MedsbenchError(f"unknown task id or category '{task}' (see `medsbench data catalog`)")
        where = getattr(task, "id", None) or getattr(task, "key", "?")
        raise MedsbenchError(f"'{where}' names no scorer and its category has none")
    return scorer


def primary_metric(task: CatalogEntry | Category | str) -> str:
    """The one metric a leaderboard ranks ``task`` by: a catalog entry or category, a task id, a
    category key, or a pooled group (``CT``, ``MRI``)."""
    if isinstance(task, str) and task in POOLED:
        return "rougeL"
    return _required(task).primary


def headline_metrics(task: CatalogEntry | Category | str) -> tuple[str, ...]:
    """The metrics shown for ``task`` (e.g. BLEU-1 and ROUGE-L for text tasks)."""
    if isinstance(task, str) and task in POOLED:
        return ("bleu1", "rougeL")
    return _required(task).headline
