"""Span answers: information extraction (exact match and token F1) and NER (micro F1 over entity sets)."""

from __future__ import annotations

from medsbench.metrics import reference as R
from medsbench.metrics import strict as S
from medsbench.metrics.registry import Scorer, register_scorer

register_scorer(Scorer(
    "ie", "information extraction: official gold-in-output substring / strict exact match and token F1",
    reference_kind="accuracy", strict_kind="accuracy_f1", primary="accuracy", headline=("accuracy",),
    reference=lambda r: R.information_extraction(r.output, r.reference),
    strict=lambda r, labels: S.information_extraction(r.output, r.reference),
))
register_scorer(Scorer(
    "ner", "named entity recognition: micro F1 over entity sets",
    reference_kind="f1_micro", strict_kind="f1_micro", primary="f1", headline=("f1",),
    reference=lambda r: R.ner(r.output, r.reference),
    strict=lambda r, labels: S.ner(r.output, r.reference),
))
