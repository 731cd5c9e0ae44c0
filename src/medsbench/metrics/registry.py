"""The scorer registry: every way of scoring a task, registered once by name.

A :class:`Scorer` holds, as data, everything that differs between tasks: its per-item
reference function (the official script's semantics, :mod:`medsbench.metrics.reference`) and
strict function (honest parsing, :mod:`medsbench.metrics.strict`), the statistics kind each
emits (:data:`KINDS`), its primary and headline metrics, its label vocabulary, and how a gold
answer becomes a label (for the majority baseline). ``catalog.yaml`` names each task's scorer
(``scorer:`` per category, overridden per task where a task differs, e.g. task123, task100).

Statistics kinds: every item becomes a row of additive statistics, so a task's metric is a
function of the column sums (accuracy = correct / counted, micro F1 from summed TP/FP/FN,
macro F1 from per-label sums, BLEU/ROUGE means); bootstrap CIs and paired tests resample rows
and re-apply the same function.

Primary metric, one per scorer (what a leaderboard ranks by, as the paper's leaderboard does):
``accuracy`` for closed answers (MCQA, IE, diagnosis, treatment, outcome, fact verification,
NLI), ``f1`` for NER (micro, entity sets) and multi-label classification (macro, HoC),
``rougeL`` for generated text (summarization, explanation, rationale, task100, task42); BLEU-1
is reported beside it as a headline metric.

Adding a metric: register a :class:`Scorer` (and, if needed, a :class:`Kind`) in this file and
name it in ``catalog.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.metrics import reference as R
from medsbench.metrics import strict as S
from medsbench.tasks.labels import DDXPLUS_CONDITIONS, HALLMARKS, SEER_OPTIONS

if TYPE_CHECKING:
    from medsbench.records.predictions import PredictionRow
    from medsbench.tasks.catalog import Category, CatalogEntry

StatRow = list[float]
Metrics = dict[str, np.ndarray]

# Pooled groups the official summarization script reports next to the tasks.
POOLED = {"CT": tuple(f"task{i}" for i in range(83, 89)), "MRI": tuple(f"task{i}" for i in range(89, 95))}
POOLED_KIND = "bleu_rouge"


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


@dataclass(frozen=True)
class Kind:
    """A kind of per-item statistics: its columns and the metrics computed from their sums."""

    name: str
    columns: tuple[str, ...]
    compute: Callable[[np.ndarray, bool], Metrics]  # (column sums (..., k), strict) -> metrics
    count_column: int | None = None  # column that says whether an item counts (None: every row)

    def metrics(self, sums: np.ndarray, *, strict: bool = False) -> Metrics:
        return self.compute(np.asarray(sums, dtype=float), strict)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("accuracy", ("correct", "count"), _accuracy, 1),
        Kind("accuracy_f1", ("correct", "count", "f1_sum"), _accuracy_f1, 1),
        Kind("bleu_rouge", ("bleu", "rouge", "count"), _bleu_rouge, 2),
        Kind("f1_micro", ("tp", "fp", "fn"), _f1_micro),
        Kind("f1_macro", tuple(f"{s}_{i}" for s in ("tp", "fp", "fn") for i in range(len(HALLMARKS))), _f1_macro),
    )
}


def metrics_from_sums(kind: str, sums: np.ndarray, *, present_labels_only: bool = False) -> Metrics:
    """Metrics (0-100) from column sums of a statistics kind; ``sums`` has shape (..., n_columns)."""
    return KINDS[kind].metrics(sums, strict=present_labels_only)


# ------------------------------------------------------------------------- scorers

ItemFn = Callable[["PredictionRow"], "StatRow | None"]
StrictFn = Callable[["PredictionRow", tuple[str, ...]], tuple[StatRow, bool]]
PairFn = Callable[["PredictionRow"], "tuple[str, str] | None"]
GoldLabelFn = Callable[["PredictionRow"], "str | None"]


@dataclass(frozen=True)
class Scorer:
    """How one kind of task is scored, in both modes.

    Item scorers set ``reference`` / ``strict`` (one statistics row per item; ``reference``
    returns None where the official script skips the item, ``strict`` also says whether an
    answer could be parsed). Text scorers set ``reference_pair`` / ``strict_pair`` (the
    hypothesis and reference texts BLEU-1 / ROUGE-L compare; None: skipped).
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
    labels_from_golds: bool = False  # strict vocabulary = ``labels`` plus every gold label of the task
    gold_label: GoldLabelFn | None = None  # closed-label tasks: the gold's label (majority baseline)
    notes: tuple[str, ...] = field(default=())

    @property
    def is_text(self) -> bool:
        return self.reference_pair is not None

    @property
    def closed_labels(self) -> bool:
        return self.gold_label is not None

    def reference_metrics(self, sums: np.ndarray) -> Metrics:
        return KINDS[self.reference_kind].metrics(sums, strict=False)

    def strict_metrics(self, sums: np.ndarray) -> Metrics:
        return KINDS[self.strict_kind].metrics(sums, strict=True)


_SCORERS: dict[str, Scorer] = {}


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


def scorers() -> dict[str, Scorer]:
    """Every registered scorer by name."""
    return dict(_SCORERS)


def get_scorer(name: str) -> Scorer:
    try:
        return _SCORERS[name]
    except KeyError:
        raise MedsbenchError(f"unknown scorer '{name}' (registered: {', '.join(sorted(_SCORERS))})") from None


def scorer_for(entry: CatalogEntry | Category | str) -> Scorer:
    """The scorer of a task or category: a :class:`CatalogEntry`, a catalog :class:`Category`, a
    catalog task id or a category key.

    An entry that names no scorer (built outside ``catalog.yaml``) gets its category's.
    """
    from medsbench.tasks.catalog import Category, catalog

    cat = catalog()
    if isinstance(entry, str):
        if entry in cat:
            entry = cat[entry]
        elif entry in cat.categories:
            entry = cat.categories[entry]
        else:
            raise MedsbenchError(f"unknown task id or category '{entry}' (see `medsbench data catalog`)")
    name = entry.scorer
    if not name and not isinstance(entry, Category):  # a workspace task: its category's scorer
        category = cat.categories.get(entry.category)
        name = category.scorer if category is not None else None
    if not name:
        where = entry.key if isinstance(entry, Category) else entry.id
        raise MedsbenchError(f"'{where}' names no scorer and its category has none")
    return get_scorer(name)


def primary_metric(task: CatalogEntry | Category | str) -> str:
    """The one metric a leaderboard ranks ``task`` by: a catalog entry or category, a task id, a
    category key, or a pooled group (``CT``, ``MRI``)."""
    if isinstance(task, str) and task in POOLED:
        return "rougeL"
    return scorer_for(task).primary


def headline_metrics(task: CatalogEntry | Category | str) -> tuple[str, ...]:
    """The metrics shown for ``task`` (e.g. BLEU-1 and ROUGE-L for text tasks)."""
    if isinstance(task, str) and task in POOLED:
        return ("bleu1", "rougeL")
    return scorer_for(task).headline


# ----------------------------------------------------------------- built-in scorers


def _text(value: str | None) -> str:
    return value or ""


def _closed(name: str) -> StrictFn:
    return lambda r, labels: S.closed_label(name, r.output, r.reference, labels)


def _gold_label(name: str) -> GoldLabelFn:
    return lambda r: S.gold_label(name, r.reference or "") or None


def _mcqa_gold(r: PredictionRow) -> str | None:
    letters = S.mcqa_letters(r.reference or "", S.parse_options(r.input))
    return ", ".join(sorted(letters)) if letters else None


def _accuracy_scorer(name: str, description: str, **functions: Any) -> Scorer:
    """A closed-answer scorer: accuracy in both modes."""
    return Scorer(name, description, "accuracy", "accuracy", "accuracy", ("accuracy",), **functions)


def _text_scorer(name: str, description: str, **functions: Any) -> Scorer:
    """A generated-text scorer: BLEU-1 and ROUGE-L in both modes, ROUGE-L primary (as the paper's leaderboard)."""
    return Scorer(name, description, "bleu_rouge", "bleu_rouge", "rougeL", ("bleu1", "rougeL"), **functions)

register_scorer(_accuracy_scorer(
    "mcqa", "multiple-choice QA: official first-letter match (a-d) / strict option extraction",
    reference=lambda r: R.mcqa(r.output, r.reference),
    strict=lambda r, labels: S.mcqa(r.output, r.reference, r.input),
    gold_label=_mcqa_gold,
))
register_scorer(_accuracy_scorer(
    "yesno_mcqa", "PubMedQA as MCQA (task123): official first letter y/n / strict yes, no, maybe",
    reference=lambda r: R.mcqa(r.output, r.reference, yes_no=True),
    strict=_closed("yesno_mcqa"), labels=("yes", "no", "maybe"), labels_from_golds=True,
    gold_label=_gold_label("yesno_mcqa"),
))
register_scorer(Scorer(
    "ie", "information extraction: official gold-in-output substring / strict exact match and token F1",
    reference_kind="accuracy", strict_kind="accuracy_f1", primary="accuracy", headline=("accuracy",),
    reference=lambda r: R.information_extraction(r.output, r.reference),
    strict=lambda r, labels: S.information_extraction(r.output, r.reference),
))
register_scorer(_accuracy_scorer(
    "diagnosis", "DDXPlus diagnosis (task130): one of the 49 DDXPlus conditions",
    reference=lambda r: R.diagnosis(r.output, r.reference),
    strict=_closed("diagnosis"), labels=DDXPLUS_CONDITIONS, gold_label=_gold_label("diagnosis"),
))
register_scorer(_accuracy_scorer(
    "treatment", "SEER treatment planning (task131): one of the 7 radiation-sequence options",
    reference=lambda r: R.treatment(r.output, r.reference),
    strict=_closed("treatment"), labels=SEER_OPTIONS, gold_label=_gold_label("treatment"),
))
register_scorer(_accuracy_scorer(
    "nli", "natural language inference: entailment, contradiction, neutral",
    reference=lambda r: R.nli(r.output, r.reference),
    strict=_closed("nli"), labels=("entailment", "contradiction", "neutral"), labels_from_golds=True,
    gold_label=_gold_label("nli"),
))
register_scorer(_accuracy_scorer(
    "fact", "fact verification with a closed answer (first line, official) / one label (strict)",
    reference=lambda r: R.fact(r.output, r.reference),
    strict=_closed("fact"), labels=("yes", "no"), labels_from_golds=True, gold_label=_gold_label("fact"),
))
register_scorer(_accuracy_scorer(
    "outcome", "clinical outcome prediction: True / False",
    reference=lambda r: R.outcome(r.output, r.reference),
    strict=_closed("outcome"), labels=("true", "false"), labels_from_golds=True, gold_label=_gold_label("outcome"),
))
register_scorer(Scorer(
    "ner", "named entity recognition: micro F1 over entity sets",
    reference_kind="f1_micro", strict_kind="f1_micro", primary="f1", headline=("f1",),
    reference=lambda r: R.ner(r.output, r.reference),
    strict=lambda r, labels: S.ner(r.output, r.reference),
))
register_scorer(Scorer(
    "hoc", "hallmarks of cancer (task106): macro F1 over the ten hallmarks",
    reference_kind="f1_macro", strict_kind="f1_macro", primary="f1", headline=("f1",),
    reference=lambda r: R.hoc(r.output, r.reference),
    strict=lambda r, labels: S.hoc(r.output, r.reference), labels=HALLMARKS,
))
register_scorer(_text_scorer(
    "text", "generated text (summarization, task42): BLEU-1 and ROUGE-L, every item counts",
    reference_pair=lambda r: R.summary_pair(r.output, r.reference),
    strict_pair=lambda r: (_text(r.output), _text(r.reference)),
))
register_scorer(_text_scorer(
    "explanation", "concept explanation: BLEU-1 / ROUGE-L; the official script skips non-text cells",
    reference_pair=lambda r: R.explanation_pair(r.output, r.reference),
    strict_pair=lambda r: (_text(r.output), _text(r.reference)),
))
register_scorer(_text_scorer(
    "rationale", "rationale: BLEU-1 / ROUGE-L of stripped texts; the official script skips empty ones",
    reference_pair=lambda r: R.rationale_pair(r.output, r.reference),
    strict_pair=lambda r: (_text(r.output).strip(), _text(r.reference).strip()),
))
register_scorer(_text_scorer(
    "ebms", "EBMS answer verification (task100): BLEU-1 / ROUGE-L, lower-cased, '.' removed",
    reference_pair=lambda r: R.ebms_pair(r.output, r.reference),
    # the script strips "." from the gold only, so even the gold itself loses BLEU; strict treats both alike
    strict_pair=lambda r: (_text(r.output).replace(".", "").strip().lower(), _text(r.reference).replace(".", "").strip().lower()),
))
