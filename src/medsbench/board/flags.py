"""Suspicion flags: tasks whose outputs look copied, for the approver of a run (never a rejection).

The flags are printed in a submission's validation report, stored with the run and shown by ``board list``
/ ``--pending`` and on the run page; approval stays manual.
What separates a copy from an honest strong model:

- ``copies_reference``: on a free-text task (BLEU/ROUGE family), an output equal to a reference of at
  least :data:`FREE_TEXT_MIN_WORDS` words (whitespace collapsed, case folded, a final period ignored).
  A model that writes summaries or explanations reproduces a multi-word reference verbatim almost
  never, so :data:`COPY_SHARE` (50%) of such rows is flagged.
- ``verbatim_closed``: on a closed-answer task (a letter, a label, an entity list) a strong model
  matches the gold often, so the share alone says little. Flagged only from :data:`CLOSED_SHARE` (95%)
  of at least :data:`MIN_ROWS` rows equal to the reference verbatim, and only when the golds are not
  one label everywhere (then answering the majority label is not a copy); the flag quotes the majority
  baseline so the approver can compare.
- ``copies_input``: an output that is the item's input (or the input plus a little, or most of it):
  from :data:`COPY_SHARE` of the rows whose input has at least :data:`FREE_TEXT_MIN_WORDS` words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from medsbench.metrics import scorer_for_task
from medsbench.tasks.catalog import catalog
from medsbench.tasks.catalog import task_order

FREE_TEXT_MIN_WORDS = 4  # a reference this long is not reproduced verbatim by chance
COPY_SHARE = 0.5  # flag a task when at least this share of its eligible rows are copies
CLOSED_SHARE = 0.95  # closed-answer tasks: verbatim share that is flagged
MIN_ROWS = 5  # closed-answer tasks: fewer rows say nothing
INPUT_COVERAGE = 0.8  # an output holding >= 80% of the input (as one piece) copies it


@dataclass(frozen=True)
class SuspicionFlag:
    """A task whose outputs look copied: shown to the approver, never a rejection."""

    task_id: str
    kind: str  # copies_reference | verbatim_closed | copies_input
    count: int
    eligible: int
    note: str = ""

    @property
    def share(self) -> float:
        return self.count / self.eligible if self.eligible else 0.0

    def __str__(self) -> str:
        what = {
            "copies_reference": "outputs are the reference verbatim",
            "verbatim_closed": "closed answers are the reference verbatim",
            "copies_input": "outputs copy the input",
        }.get(self.kind, self.kind)
        note = f" ({self.note})" if self.note else ""
        return f"[{self.task_id}] {self.count} of {self.eligible} {what} ({100 * self.share:.0f}%){note}"

    def as_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "kind": self.kind, "count": self.count, "eligible": self.eligible,
                "note": self.note, "text": str(self)}


def _canon(text: Any) -> str:
    """Whitespace collapsed, case folded, a final period dropped: what "the same text" means here."""
    return re.sub(r"\s+", " ", str(text)).strip().rstrip(".").strip().casefold()


def _words(text: str) -> int:
    """Words of a canonical text; scripts without spaces (Chinese, Japanese) count 2 characters a word."""
    parts = text.split()
    return len(parts) if len(parts) > 1 else len(text) // 2 if text and not text.isascii() else len(parts)


def suspicion_flags(rows: Iterable[Any]) -> list[SuspicionFlag]:
    """Flags per task for outputs identical to the references or copying the input (see module doc).

    ``rows``: prediction rows (:class:`medsbench.records.PredictionRow`); failed items are skipped.
    """

    cat = catalog()
    by_task: dict[str, list[Any]] = {}
    for r in rows:
        if getattr(r, "error", None) is None and r.output is not None:
            by_task.setdefault(r.task_id, []).append(r)
    flags: list[SuspicionFlag] = []
    for tid in sorted(by_task, key=task_order):
        task_rows = by_task[tid]
        entry = cat.get(tid)
        outs = [_canon(r.output) for r in task_rows]
        golds = [{_canon(g) for g in (r.references or [r.reference]) if g is not None} for r in task_rows]
        free_text = scorer.is_text if entry is not None and (scorer := scorer_for_task(entry)) is not None else None
        if free_text is None:  # not in the catalog: free text when most golds are long
            long = sum(1 for g in golds if any(_words(x) >= FREE_TEXT_MIN_WORDS for x in g))
            free_text = long * 2 > len(golds)
        if free_text:
            eligible = [i for i, g in enumerate(golds) if any(_words(x) >= FREE_TEXT_MIN_WORDS for x in g)]
            hits = sum(1 for i in eligible if outs[i] in golds[i])
            if eligible and hits / len(eligible) >= COPY_SHARE:
                flags.append(SuspicionFlag(tid, "copies_reference", hits, len(eligible),
                                           f"free-text references of {FREE_TEXT_MIN_WORDS}+ words; flagged from "
                                           f"{100 * COPY_SHARE:.0f}%"))
        else:
            scored = [i for i, g in enumerate(golds) if g]
            hits = sum(1 for i in scored if outs[i] in golds[i])
            firsts = [_canon(r.reference if r.reference is not None else r.references[0]) for r in task_rows
                      if r.reference is not None or r.references]
            top = max(Counter(firsts).values()) if firsts else 0
            baseline = top / len(firsts) if firsts else 0.0
            if len(scored) >= MIN_ROWS and hits / len(scored) >= CLOSED_SHARE and baseline < 1.0:
                flags.append(SuspicionFlag(tid, "verbatim_closed", hits, len(scored),
                                           f"majority baseline {100 * baseline:.0f}%; flagged from "
                                           f"{100 * CLOSED_SHARE:.0f}%"))
        inputs = [_canon(r.input) if r.input is not None else "" for r in task_rows]
        eligible = [i for i, x in enumerate(inputs) if _words(x) >= FREE_TEXT_MIN_WORDS]
        copies = sum(1 for i in eligible if outs[i] and (
            inputs[i] in outs[i] or (outs[i] in inputs[i] and len(outs[i]) >= INPUT_COVERAGE * len(inputs[i]))))
        if eligible and copies / len(eligible) >= COPY_SHARE:
            flags.append(SuspicionFlag(tid, "copies_input", copies, len(eligible),
                                       f"output holds the input or {100 * INPUT_COVERAGE:.0f}%+ of it; flagged from "
                                       f"{100 * COPY_SHARE:.0f}%"))
    return flags
