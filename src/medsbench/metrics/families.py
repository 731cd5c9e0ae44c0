"""Which scorer a task uses, and how each kind of per-item statistic becomes metrics.

Every scorer turns one item into a row of additive statistics, so a task's metric is a
function of the column sums: accuracy = correct / counted, micro F1 from summed TP/FP/FN,
macro F1 from per-label sums, BLEU/ROUGE means. Bootstrap and paired tests then only
resample rows and re-apply the same function (vectorised over resamples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medsbench.tasks.catalog import CatalogEntry
from medsbench.tasks.labels import HALLMARKS

# Pooled groups the official summarization script reports next to the tasks.
POOLED = {"CT": tuple(f"task{i}" for i in range(83, 89)), "MRI": tuple(f"task{i}" for i in range(89, 95))}

# kind -> names of the statistic columns (f1_macro: tp, fp, fn per label)
KINDS = {
    "accuracy": ("correct", "count"),
    "accuracy_f1": ("correct", "count", "f1_sum"),
    "bleu_rouge": ("bleu", "rouge", "count"),
    "f1_micro": ("tp", "fp", "fn"),
    "f1_macro": tuple(f"{s}_{i}" for s in ("tp", "fp", "fn") for i in range(len(HALLMARKS))),
}
PRIMARY = {"accuracy": "accuracy", "accuracy_f1": "accuracy", "bleu_rouge": "rougeL", "f1_micro": "f1", "f1_macro": "f1"}


@dataclass(frozen=True)
class Family:
    """How one task is scored: a name for the scorer and the kinds of statistics it emits."""

    name: str  # mcqa, yesno_mcqa, ie, diagnosis, treatment, nli, fact, outcome, ner, hoc, text, explanation, rationale, task100
    category: str
    language: str
    reference_kind: str
    strict_kind: str


def family_of(task_id: str, category: str, metric: str, language: str) -> Family:
    """The scorer of a catalog task (category, metric and a few task-specific rules of the official scripts)."""
    if metric == "bleu_rouge":
        name = {"explanation": "explanation", "rationale": "rationale", "fact_verification": "task100"}.get(category, "text")
        return Family(name, category, language, "bleu_rouge", "bleu_rouge")
    if category == "mcqa":
        name = "yesno_mcqa" if task_id == "task123" else "mcqa"
        return Family(name, category, language, "accuracy", "accuracy")
    if category == "ner":
        return Family("ner", category, language, "f1_micro", "f1_micro")
    if category == "text_classification":
        return Family("hoc", category, language, "f1_macro", "f1_macro")
    if category == "information_extraction":
        return Family("ie", category, language, "accuracy", "accuracy_f1")
    name = {
        "diagnosis": "diagnosis",
        "treatment_planning": "treatment",
        "nli": "nli",
        "fact_verification": "fact",
        "clinical_outcome": "outcome",
    }.get(category)
    if name is None:
        raise KeyError(category)
    return Family(name, category, language, "accuracy", "accuracy")


def family_of_entry(entry: CatalogEntry) -> Family:
    return family_of(entry.id, entry.category, entry.metric, entry.language)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (the scripts' and sklearn's zero_division=0)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def metrics_from_sums(kind: str, sums: np.ndarray, *, present_labels_only: bool = False) -> dict[str, np.ndarray]:
    """Metrics (0-100) from column sums; ``sums`` has shape (..., n_columns)."""
    s = np.asarray(sums, dtype=float)
    if kind == "accuracy":
        return {"accuracy": 100 * _div(s[..., 0], s[..., 1])}
    if kind == "accuracy_f1":
        return {"accuracy": 100 * _div(s[..., 0], s[..., 1]), "f1": 100 * _div(s[..., 2], s[..., 1])}
    if kind == "bleu_rouge":
        return {"bleu1": 100 * _div(s[..., 0], s[..., 2]), "rougeL": 100 * _div(s[..., 1], s[..., 2])}
    if kind == "f1_micro":
        tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
        p = _div(tp, tp + fp)
        r = _div(tp, tp + fn)
        return {"f1": 100 * _div(2 * p * r, p + r), "precision": 100 * p, "recall": 100 * r}
    if kind == "f1_macro":
        n = len(HALLMARKS)
        tp, fp, fn = s[..., :n], s[..., n : 2 * n], s[..., 2 * n :]
        p = _div(tp, tp + fp)
        r = _div(tp, tp + fn)
        f = _div(2 * tp, 2 * tp + fp + fn)  # sklearn's per-label F1 (equals 2PR/(P+R), 0 when undefined)
        if present_labels_only:  # strict: a label nobody predicted and no gold has carries no evidence
            used = (tp + fp + fn) > 0
            k = used.sum(axis=-1)
            mean = lambda x: _div((x * used).sum(axis=-1), k)  # noqa: E731
        else:  # reference: sklearn average='macro' over all ten labels
            mean = lambda x: x.mean(axis=-1)  # noqa: E731
        return {"f1": 100 * mean(f), "precision": 100 * mean(p), "recall": 100 * mean(r)}
    raise KeyError(kind)


def n_counted(kind: str, stats: np.ndarray) -> int:
    """Items that enter the metric (the official scripts skip some)."""
    if kind in ("accuracy", "accuracy_f1"):
        return int(stats[:, 1].sum())
    if kind == "bleu_rouge":
        return int(stats[:, 2].sum())
    return int(stats.shape[0])
