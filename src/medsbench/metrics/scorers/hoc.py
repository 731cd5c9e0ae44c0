"""Hallmarks of cancer (task106): multi-label, macro F1 over the ten hallmarks.

A gold's label is its set of hallmarks (sorted, joined with ", "; ``none`` for "None of the
hallmarks"), the unit of ``data audit``'s label distribution.
"""

from __future__ import annotations

from medsbench.metrics import reference as R
from medsbench.metrics import strict as S
from medsbench.metrics.registry import Scorer, register_scorer
from medsbench.tasks.labels import HALLMARKS


def hoc_gold(gold: str, input_text: str | None = None) -> str | None:
    """The gold's hallmarks joined with ", " (``none`` for none); None when it names neither."""
    found = S.hoc_labels(gold)
    if found is None:
        return None
    return ", ".join(sorted(h for h, hit in zip(HALLMARKS, found) if hit)) or "none"


register_scorer(Scorer(
    "hoc", "hallmarks of cancer (task106): macro F1 over the ten hallmarks",
    reference_kind="f1_macro", strict_kind="f1_macro", primary="f1", headline=("f1",),
    reference=lambda r: R.hoc(r.output, r.reference),
    strict=lambda r, labels: S.hoc(r.output, r.reference), labels=HALLMARKS, gold_label=hoc_gold,
))
