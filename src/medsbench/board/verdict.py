"""Per-item verdicts (correct / incorrect / none) for the predictions browser, in both modes.

The browser only needs a yes/no per item to filter on; the board's scores always come from
``results.json``. Verdicts come from the scoring engine's per-item statistics
(:func:`medsbench.metrics.score_items`), so they follow exactly the rules behind the scores:
an accuracy item is correct when it counts as correct; an NER / multi-label item when it has no
false positive and no false negative; text-similarity (BLEU/ROUGE) items have no verdict, and
neither has a failed item (it is missing, not wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medsbench.records import PredictionRow

Verdict = tuple[int | None, int | None]  # (official/reference, strict)


def _from_stats(kind: str, row: Any) -> int | None:
    if kind in ("accuracy", "accuracy_f1"):
        return int(row[0] > 0)
    if kind in ("f1_micro", "f1_macro"):
        n = len(row) // 3
        fp_fn = row[n:] if kind == "f1_macro" else row[1:]
        return int(float(sum(fp_fn)) == 0.0)
    return None


def _scoring_row(row: PredictionRow, index: int) -> dict[str, Any]:
    """The row in the shape the scoring engine takes."""
    return {
        "task_id": row.task_id, "id": row.id, "input": row.input, "reference": row.reference,
        "references": list(row.references), "output": row.output, "category": row.category,
        "language": row.language, "error": row.error, "where": row.where or f"row {index + 1}", "index": index,
    }


def item_verdicts(rows: Sequence[PredictionRow]) -> list[Verdict]:
    """One (reference, strict) verdict per prediction row, in order."""
    from medsbench.metrics import reference as ref_mode
    from medsbench.metrics import score_items
    from medsbench.tasks.catalog import catalog

    cat = catalog()
    # Text-similarity tasks have no verdict: leave them out (they are most of the scoring time).
    wanted = {tid for tid in {r.task_id for r in rows} if (e := cat.get(tid)) is not None and e.metric != "bleu_rouge"}
    out: list[Verdict] = [(None, None)] * len(rows)
    positions: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        # The scorer skips rows without gold; a failed item has no answer to judge.
        if r.task_id in wanted and not r.failed and not ref_mode.is_na(r.reference):
            positions.setdefault(r.task_id, []).append(i)
    if not positions:
        return out
    per_task, _unknown, _warnings = score_items([_scoring_row(rows[i], i) for idx in positions.values() for i in idx])
    for tid, items in per_task.items():
        fam = items.family
        for j, i in enumerate(positions.get(tid, [])):
            ref = _from_stats(fam.reference_kind, items.reference[j]) if items.ref_counted[j] else None
            out[i] = (ref, _from_stats(fam.strict_kind, items.strict[j]))
    return out
