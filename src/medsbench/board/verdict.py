"""Per-item verdicts (correct / incorrect / not applicable) for the predictions browser.

The browser only needs a yes/no per item to filter on; the scores on the board always come from
``results.json``. Order of preference: a verdict the row already carries (``correct`` or a 0/1
``score``), the scoring engine's per-item function when it offers one, else a transparent fallback
that follows the official (reference-mode) rule of each task family. Text-similarity tasks
(BLEU/ROUGE) have no verdict.
"""

from __future__ import annotations

import re
from typing import Any

_MCQA_YN = {"task123"}
_ANSWER_PREFIX = re.compile(r"the right answer is", re.I)


def _norm(text: str) -> str:
    return text.replace(".", "").strip().lower()


def _engine_verdict(task_id: str, output: str, references: list[str]) -> bool | None | str:
    """Ask ``medsbench.metrics`` (issue B) for a per-item verdict if it exposes one."""
    try:
        import medsbench.metrics as metrics
    except ImportError:  # pragma: no cover - metrics is part of the package
        return "absent"
    fn = getattr(metrics, "item_correct", None)
    if fn is None:
        return "absent"
    try:
        return fn(task_id, output, references)
    except Exception:  # a verdict is a convenience for browsing; never fail ingestion on it
        return "absent"


def fallback_verdict(task_id: str, output: str, reference: str) -> bool | None:
    from medsbench.tasks.catalog import catalog

    entry = catalog().get(task_id)
    if entry is None or entry.metric == "bleu_rouge":
        return None
    out, ref = output.strip().lower(), reference.strip().lower()
    if not out:
        return False
    if entry.category == "mcqa":
        out = _ANSWER_PREFIX.sub("", out).strip()
        ref = _ANSWER_PREFIX.sub("", ref).strip()
        return bool(out and ref) and out[0] == ref[0]
    if entry.metric in ("f1_micro", "f1_macro"):
        split = lambda s: {p.strip() for p in re.split(r"[,;\n]", _norm(s)) if p.strip()}  # noqa: E731
        return split(output) == split(reference)
    return _norm(reference) in out


def item_verdict(task_id: str, output: str, references: list[str], row: dict[str, Any] | None = None) -> int | None:
    """1 correct, 0 incorrect, None when the task has no per-item verdict."""
    row = row or {}
    if isinstance(row.get("correct"), bool):
        return int(row["correct"])
    score = row.get("score")
    if isinstance(score, (int, float)) and not isinstance(score, bool) and score in (0, 1):
        return int(score)
    got = _engine_verdict(task_id, output, references)
    if got != "absent":
        return None if got is None else int(bool(got))
    verdict = fallback_verdict(task_id, output, references[0] if references else "")
    return None if verdict is None else int(verdict)
