"""Per-item verdicts (correct / incorrect / none) in both modes, e.g. for the board's predictions browser.

Verdicts come from the scoring engine's per-item statistics (:func:`medsbench.metrics.score_items`)
and each statistics kind's verdict rule (:class:`medsbench.metrics.registry.Kind`), so they follow
exactly the rules behind the scores: an accuracy item is correct when it counts as correct; an
NER / multi-label item when it has no false positive and no false negative; free-text items
(BLEU/ROUGE) have no verdict, and neither has a failed item (it is missing, not wrong) nor an
item the official script skips (reference mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medsbench.metrics import reference as ref_mode
from medsbench.metrics.registry import scorer_for_task
from medsbench.metrics.score import score_items
from medsbench.records.predictions import PredictionRow

Verdict = tuple[int | None, int | None]  # (official/reference, strict)


def _scoring_row(row: PredictionRow, index: int) -> dict[str, Any]:
    """The row in the shape the scoring engine takes."""
    return {
        "task_id": row.task_id, "id": row.id, "input": row.input, "reference": row.reference,
        "references": list(row.references), "output": row.output, "category": row.category,
        "language": row.language, "error": row.error, "where": row.where or f"row {index + 1}", "index": index,
    }


def item_verdicts(rows: Sequence[PredictionRow]) -> list[Verdict]:
    """One (reference, strict) verdict per prediction row, in order."""
    # Free-text tasks have no verdict: leave them out (they are most of the scoring time).
    wanted = {tid for tid in {r.task_id for r in rows} if (s := scorer_for_task(tid)) is not None and not s.is_text}
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
        for j, i in enumerate(positions.get(tid, [])):
            out[i] = items.scorer.verdicts(items.reference[j] if items.ref_counted[j] else None, items.strict[j])
    return out
