"""Generated text: BLEU-1 and ROUGE-L in both modes, ROUGE-L primary (as the paper's leaderboard).

The four scorers differ only in which items the official script skips and how it prepares the
two texts (:mod:`medsbench.metrics.reference`); strict mode scores every item (empty = 0).
"""

from __future__ import annotations

from typing import Any

from medsbench.metrics import reference as R
from medsbench.metrics.registry import Scorer, register_scorer


def _text(value: str | None) -> str:
    """A text as strict mode compares it: surrounding white space is formatting (the official rationale
    script strips it too; the ``rouge`` package would count a blank piece after a final "." as a sentence)."""
    return (value or "").strip()


def text_scorer(name: str, description: str, **functions: Any) -> Scorer:
    """A generated-text scorer: BLEU-1 and ROUGE-L, ROUGE-L primary."""
    return Scorer(name, description, "bleu_rouge", "bleu_rouge", "rougeL", ("bleu1", "rougeL"), **functions)


register_scorer(text_scorer(
    "text", "generated text (summarization, task42): BLEU-1 and ROUGE-L, every item counts",
    reference_pair=lambda r: R.summary_pair(r.output, r.reference),
    strict_pair=lambda r: (_text(r.output), _text(r.reference)),
))
register_scorer(text_scorer(
    "explanation", "concept explanation: BLEU-1 / ROUGE-L; the official script skips non-text cells",
    reference_pair=lambda r: R.explanation_pair(r.output, r.reference),
    strict_pair=lambda r: (_text(r.output), _text(r.reference)),
))
register_scorer(text_scorer(
    "rationale", "rationale: BLEU-1 / ROUGE-L of stripped texts; the official script skips empty ones",
    reference_pair=lambda r: R.rationale_pair(r.output, r.reference),
    strict_pair=lambda r: (_text(r.output), _text(r.reference)),
))
register_scorer(text_scorer(
    "ebms", "EBMS answer verification (task100): BLEU-1 / ROUGE-L, lower-cased, '.' removed",
    reference_pair=lambda r: R.ebms_pair(r.output, r.reference),
    # the script strips "." from the gold only, so even the gold itself loses BLEU; strict treats both alike
    strict_pair=lambda r: (_text(r.output).replace(".", "").strip().lower(),
                           _text(r.reference).replace(".", "").strip().lower()),
))
