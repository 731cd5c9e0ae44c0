"""Per-item verdicts (correct / incorrect / none) for the predictions browser, in both modes.

The browser only needs a yes/no per item to filter on; the board's scores always come from
``results.json``. Verdicts come from the scoring engine's per-item statistics
(:func:`medsbench.metrics.score_items`), so they follow exactly the rules behind the scores:
an accuracy item is correct when it counts as correct; an NER / multi-label item when it has no
false positive and no false negative; text-similarity (BLEU/ROUGE) items have no verdict.
"""

from __future__ import annotations

import os
from typing import Any

Verdict = tuple[int | None, int | None]  # (official/reference, strict)


def _from_stats(kind: str, row: Any) -> int | None:
    if kind in ("accuracy", "accuracy_f1"):
        return int(row[0] > 0)
    if kind in ("f1_micro", "f1_macro"):
        n = len(row) // 3
        fp_fn = row[n:] if kind == "f1_macro" else row[1:]
        return int(float(sum(fp_fn)) == 0.0)
    return None


def item_verdicts(path: str | os.PathLike) -> list[Verdict]:
    """One (reference, strict) verdict per row of a predictions file, in file order."""
    from medsbench.metrics import load_predictions, score_items
    from medsbench.metrics import reference as ref_mode

    from medsbench.tasks.catalog import catalog

    cat = catalog()
    rows = load_predictions(path, format="jsonl")
    # Text-similarity tasks have no verdict: leave them out (they are most of the scoring time).
    wanted = {tid for tid in {r["task_id"] for r in rows} if (e := cat.get(tid)) is not None and e.metric != "bleu_rouge"}
    out: list[Verdict] = [(None, None)] * len(rows)
    positions: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r["task_id"] in wanted and not ref_mode.is_na(r["reference"]):  # the scorer skips rows without gold
            positions.setdefault(r["task_id"], []).append(i)
    per_task, _unknown, _warnings = score_items([rows[i] for idx in positions.values() for i in idx])
    for tid, items in per_task.items():
        fam = items.family
        for j, i in enumerate(positions.get(tid, [])):
            ref = _from_stats(fam.reference_kind, items.reference[j]) if items.ref_counted[j] else None
            out[i] = (ref, _from_stats(fam.strict_kind, items.strict[j]))
    return out
