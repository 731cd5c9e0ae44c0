"""Closed-label scorers: the answer must name exactly one label of the task's label set.

diagnosis (DDXPlus, task130) and treatment (SEER, task131) have fixed vocabularies; NLI, fact
verification, clinical outcome and PubMedQA-as-MCQA (task123) have known labels that a task's
own labels extend (catalog ``labels:``, the task file's golds). Each scorer strips its answer
prefix ("The diagnosis result is ...") from golds and looks for the answer after it in outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from medsbench.metrics import reference as R
from medsbench.metrics import strict as S
from medsbench.metrics.registry import ItemFn, Scorer, register_scorer
from medsbench.tasks.labels import DDXPLUS_CONDITIONS, SEER_OPTIONS


def closed_scorer(
    name: str,
    description: str,
    reference: ItemFn,
    labels: tuple[str, ...],
    *,
    extensible: bool = False,
    prefix: re.Pattern[str] = S.GENERIC_PREFIX,
    yes_no: bool = False,
) -> Scorer:
    """A closed-label scorer: accuracy in both modes; golds and outputs read with the same ``prefix``."""

    def gold_label(gold: str, input_text: str | None = None) -> str | None:
        return S.closed_gold(gold, prefix, yes_no=yes_no) or None

    def strict(row, task_labels: tuple[str, ...]) -> tuple[list[float], bool]:
        return S.closed_label(row.output, gold_label(row.reference or "") or "", task_labels, prefix, yes_no=yes_no)

    return Scorer(name, description, "accuracy", "accuracy", "accuracy", ("accuracy",), reference=reference,
                  strict=strict, labels=labels, extensible_labels=extensible, gold_label=gold_label,
                  answer_prefix=prefix)


def _ref(fn: Callable[[object, object], list[float]]) -> ItemFn:
    return lambda r: fn(r.output, r.reference)


register_scorer(closed_scorer(
    "yesno_mcqa", "PubMedQA as MCQA (task123): official first letter y/n / strict yes, no, maybe",
    lambda r: R.mcqa(r.output, r.reference, yes_no=True), ("yes", "no", "maybe"), extensible=True, yes_no=True,
))
register_scorer(closed_scorer(
    "diagnosis", "DDXPlus diagnosis (task130): one of the 49 DDXPlus conditions",
    _ref(R.diagnosis), DDXPLUS_CONDITIONS, prefix=S.DIAGNOSIS_PREFIX,
))
register_scorer(closed_scorer(
    "treatment", "SEER treatment planning (task131): one of the 7 radiation-sequence options",
    _ref(R.treatment), SEER_OPTIONS, prefix=S.TREATMENT_PREFIX,
))
register_scorer(closed_scorer(
    "nli", "natural language inference: entailment, contradiction, neutral",
    _ref(R.nli), ("entailment", "contradiction", "neutral"), extensible=True,
))
register_scorer(closed_scorer(
    "fact", "fact verification with a closed answer (first line, official) / one label (strict)",
    _ref(R.fact), ("yes", "no"), extensible=True,
))
register_scorer(closed_scorer(
    "outcome", "clinical outcome prediction: True / False",
    _ref(R.outcome), ("true", "false"), extensible=True,
))
