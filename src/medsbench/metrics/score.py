"""Score predictions: per-task metrics in both modes, confidence intervals, category averages.

:func:`score_predictions` is the library entry of ``medsbench score`` and what the eval
runner calls; its return value is the content of results.json (contract 2 in the design).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file, write_json
from medsbench.metrics import reference as ref_mode
from medsbench.metrics import strict as strict_mode
from medsbench.metrics.families import KINDS, POOLED, PRIMARY, Family, family_of, metrics_from_sums
from medsbench.metrics.load import load_predictions, normalize_rows
from medsbench.metrics.stats import bootstrap_ci
from medsbench.metrics.text import bleu1, rouge_l
from medsbench.metrics.tokenize import tokenize_many
from medsbench.tasks.catalog import catalog
from medsbench.tasks.workspace import task_order as _task_order

log = logging.getLogger(__name__)
METRIC_KEYS = ("accuracy", "bleu1", "rougeL", "f1", "precision", "recall")


@dataclass
class TaskItems:
    """Per-item statistics of one task in both modes (rows aligned with ``keys``)."""

    task_id: str
    family: Family
    keys: list[str]  # item identity for pairing: id, else input (+ occurrence)
    reference: np.ndarray  # (n, k_ref); rows of skipped items are all zero
    ref_counted: np.ndarray  # (n,) bool: the official script scores this item
    strict: np.ndarray  # (n, k_strict)
    parsed: np.ndarray  # (n,) bool
    empty: np.ndarray  # (n,) bool
    skipped_no_gold: int = 0
    warnings: list[str] = field(default_factory=list)

    def reference_metrics(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        return metrics_from_sums(self.family.reference_kind, sums)

    def strict_metrics(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        return metrics_from_sums(self.family.strict_kind, sums, present_labels_only=True)


# ------------------------------------------------------------------ text metrics


class _TextScorer:
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


def _resolve_family(task_id: str, rows: list[dict[str, Any]]) -> tuple[Family | None, bool]:
    cat = catalog()
    entry = cat.get(task_id)
    if entry is not None:
        return family_of(entry.id, entry.category, entry.metric, entry.language), True
    category = rows[0].get("category")
    if category in cat.categories:
        language = rows[0].get("language") or "en"
        return family_of(task_id, category, cat.categories[category].metric, language), False
    return None, False


def _item_keys(rows: list[dict[str, Any]]) -> list[str]:
    seen: Counter[str] = Counter()
    keys = []
    for r in rows:
        base = f"id:{r['id']}" if r.get("id") is not None else f"input:{r.get('input') or ''}"
        seen[base] += 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return keys


def score_items(rows: Sequence[dict[str, Any]], *, strict_ids: bool = False) -> tuple[dict[str, TaskItems], list[str], list[str]]:
    """Per-item statistics of every task: ({task_id: TaskItems}, unknown task ids, warnings)."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], []).append(r)
    unknown = sorted(t for t in by_task if t not in catalog())
    if unknown and strict_ids:
        raise MedsbenchError(f"task ids not in the catalog: {', '.join(unknown)} (drop --strict-ids to score the rest)")
    warnings: list[str] = []
    text = _TextScorer()
    pending: list[tuple[TaskItems, list[Any], list[Any]]] = []
    result: dict[str, TaskItems] = {}
    for task_id, task_rows in by_task.items():
        fam, _known = _resolve_family(task_id, task_rows)
        if fam is None:
            warnings.append(f"{task_id}: not in the catalog and no known category; not scored")
            continue
        scored = [r for r in task_rows if not ref_mode.is_na(r["reference"])]
        no_gold = len(task_rows) - len(scored)
        if no_gold:
            warnings.append(f"{task_id}: {no_gold} row(s) without a gold answer not scored")
        if not scored:
            continue
        n_missing = sum(1 for r in scored if r["output"] is None)
        if n_missing:
            warnings.append(f"{task_id}: {n_missing} missing (NaN/empty) output(s) counted as empty")
        items = _score_task(task_id, fam, scored, text, pending)
        items.skipped_no_gold = no_gold
        result[task_id] = items
    if pending:
        scores = text.run()
        for items, ref_keys, strict_keys in pending:
            for i, key in enumerate(ref_keys):
                if key is not None:
                    b, r = scores[key]
                    items.reference[i] = (b, r, 1.0)
            for i, key in enumerate(strict_keys):
                b, r = scores[key]
                items.strict[i] = (b, r, 1.0)
    return result, unknown, warnings


def _score_task(task_id: str, fam: Family, rows: list[dict[str, Any]], text: _TextScorer, pending: list) -> TaskItems:
    n = len(rows)
    ref = np.zeros((n, len(KINDS[fam.reference_kind])))
    strict = np.zeros((n, len(KINDS[fam.strict_kind])))
    counted = np.ones(n, dtype=bool)
    parsed = np.ones(n, dtype=bool)
    empty = np.array([strict_mode.is_empty(r["output"]) for r in rows], dtype=bool)
    items = TaskItems(task_id, fam, _item_keys(rows), ref, counted, strict, parsed, empty)
    name = fam.name
    if fam.reference_kind == "bleu_rouge":
        ref_keys: list[Any] = []
        strict_keys: list[Any] = []
        for i, r in enumerate(rows):
            pair = ref_mode.text_pair(name, r["output"], r["reference"])
            if pair is None:
                counted[i] = False
                ref_keys.append(None)
            else:
                ref_keys.append(text.add(pair[0], pair[1], fam.language))
            out = r["output"] or ""
            gold = r["reference"] or ""
            if name == "task100":
                # the script strips "." from the gold only, so even the gold itself loses BLEU; strict treats both alike
                s_pair = (out.replace(".", "").strip().lower(), gold.replace(".", "").strip().lower())
            elif name == "rationale":
                s_pair = (out.strip(), gold.strip())
            else:
                s_pair = (out, gold)
            strict_keys.append(text.add(s_pair[0], s_pair[1], fam.language))
        pending.append((items, ref_keys, strict_keys))
        parsed[:] = True
        return items
    ref_fn = ref_mode.ACCURACY[name]
    labels: tuple[str, ...] = ()
    if name in ("diagnosis", "treatment", "nli", "fact", "outcome", "yesno_mcqa"):
        labels = strict_mode.task_labels(name, [r["reference"] for r in rows])
    for i, r in enumerate(rows):
        out, gold = r["output"], r["reference"]
        row = ref_fn(out, gold)
        if row is None:
            counted[i] = False
        else:
            ref[i] = row
        if name == "mcqa":
            s_row, ok = strict_mode.mcqa(out, gold, r.get("input"))
        elif name == "ner":
            s_row, ok = strict_mode.ner(out, gold)
        elif name == "hoc":
            s_row, ok = strict_mode.hoc(out, gold)
        elif name == "ie":
            s_row, ok = strict_mode.information_extraction(out, gold)
        else:
            s_row, ok = strict_mode.closed_label(name, out, gold, labels)
        strict[i] = s_row
        parsed[i] = ok
    return items


def _round(values: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items()}


def summarize_task(items: TaskItems, *, bootstrap: int, seed: int) -> dict[str, Any]:
    fam = items.family
    ref_rows = items.reference[items.ref_counted]
    strict_metrics = items.strict_metrics(items.strict.sum(axis=0))
    reference_metrics = items.reference_metrics(ref_rows.sum(axis=0))
    n = len(items.keys)
    out: dict[str, Any] = {
        "category": fam.category,
        "language": fam.language,
        "n": n,
        "n_reference": int(items.ref_counted.sum()),
        "metric": PRIMARY[fam.strict_kind],
        "metrics": _round(strict_metrics),
        "reference": _round(reference_metrics),
        "ci": {},
        "reference_ci": {},
        "parse_failure_rate": None if fam.strict_kind == "bleu_rouge" else round(float((~items.parsed & ~items.empty).mean()), 4),
        "empty_rate": round(float(items.empty.mean()), 4),
    }
    if items.skipped_no_gold:
        out["n_without_gold"] = items.skipped_no_gold
    if bootstrap > 0:
        out["ci"] = {k: [round(v[0], 4), round(v[1], 4)] for k, v in bootstrap_ci(
            items.strict, items.strict_metrics, resamples=bootstrap, seed=f"{seed}:{items.task_id}:strict").items()}
        if ref_rows.shape[0]:
            out["reference_ci"] = {k: [round(v[0], 4), round(v[1], 4)] for k, v in bootstrap_ci(
                ref_rows, items.reference_metrics, resamples=bootstrap, seed=f"{seed}:{items.task_id}:reference").items()}
    return out


def _macro(task_results: Iterable[dict[str, Any]], key: str) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for t in task_results:
        for k, v in t[key].items():
            sums.setdefault(k, []).append(v)
    return {k: round(float(np.mean(v)), 4) for k, v in sums.items()}


def score_predictions(
    rows_or_path: str | os.PathLike | Sequence[dict[str, Any]],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    strict_ids: bool = False,
    format: str = "auto",
) -> dict[str, Any]:
    """Score a predictions file (or rows) in reference and strict mode; returns results.json content."""
    from medsbench import __version__

    inputs: list[dict[str, str]] = []
    if isinstance(rows_or_path, (str, os.PathLike)):
        rows = load_predictions(rows_or_path, format=format)
        inputs.append({"path": str(rows_or_path), "sha256": sha256_file(rows_or_path)})
    else:
        rows = normalize_rows(rows_or_path) if rows_or_path and "where" not in rows_or_path[0] else list(rows_or_path)
        if not rows:
            raise MedsbenchError("no predictions to score")
    per_task, unknown, warnings = score_items(rows, strict_ids=strict_ids)
    for w in warnings:
        log.info(w)
    tasks = {tid: summarize_task(items, bootstrap=bootstrap, seed=seed) for tid, items in sorted(per_task.items(), key=lambda kv: _task_order(kv[0]))}
    categories: dict[str, Any] = {}
    for cat in dict.fromkeys(t["category"] for t in tasks.values()):
        members = [t for t in tasks.values() if t["category"] == cat]
        categories[cat] = {
            "n_tasks": len(members),
            "tasks": [tid for tid, t in tasks.items() if t["category"] == cat],
            "metrics": _macro(members, "metrics"),
            "reference": _macro(members, "reference"),
        }
    pooled: dict[str, Any] = {}
    for name, members in POOLED.items():
        present = [per_task[t] for t in members if t in per_task]
        if not present:
            continue
        ref_rows = np.concatenate([it.reference[it.ref_counted] for it in present])
        strict_rows = np.concatenate([it.strict for it in present])
        pooled[name] = {
            "tasks": [t for t in members if t in per_task],
            "n": int(strict_rows.shape[0]),
            "metrics": _round(metrics_from_sums("bleu_rouge", strict_rows.sum(axis=0))),
            "reference": _round(metrics_from_sums("bleu_rouge", ref_rows.sum(axis=0))),
        }
    return {
        "medsbench_version": __version__,
        "inputs": inputs,
        "n_rows": len(rows),
        "tasks": tasks,
        "categories": categories,
        "pooled": pooled,
        "unknown_task_ids": unknown,
        "warnings": warnings,
        "reference_deviations": list(ref_mode.DEVIATIONS),
        "bootstrap": {"resamples": bootstrap, "seed": seed, "level": 0.95},
    }


def write_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write results.json atomically."""
    path = Path(path)
    write_json(path, results)
    return path
