"""Multiple-choice QA: the official first-letter match (a-d) / strict option-letter extraction.

The gold label is the set of option letters the gold answer gives ("The right answer is B: ...",
"正确答案是 B: ...", "Les bonnes réponses est A, C: ...", "Правильные ответ: A: да", "正しい答えは
C: ... です", "La respuesta correcta es: B: ...", lower-case letters too), read exactly as outputs
are read (:func:`medsbench.metrics.strict.mcqa_letters`).
"""

from __future__ import annotations

from medsbench.metrics import reference as R
from medsbench.metrics import strict as S
from medsbench.metrics.registry import Scorer, register_scorer


def mcqa_gold(gold: str, input_text: str | None = None) -> str | None:
    """The gold's option letters, sorted and joined with ", " (``"B"``, ``"A, C"``); None without a letter."""
    letters = S.mcqa_letters(gold, S.parse_options(input_text))
    return ", ".join(sorted(letters)) if letters else None


register_scorer(Scorer(
    "mcqa", "multiple-choice QA: official first-letter match (a-d) / strict option extraction",
    "accuracy", "accuracy", "accuracy", ("accuracy",),
    reference=lambda r: R.mcqa(r.output, r.reference),
    strict=lambda r, labels: S.mcqa(r.output, r.reference, r.input),
    gold_label=mcqa_gold,
))
