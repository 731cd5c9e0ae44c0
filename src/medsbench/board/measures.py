"""What the board shows beside the scores: contamination-aware (clean) scores, category averages and
slices, tokens and cost. Pure functions from a run folder's records to typed board rows (no SQL).

* :func:`check_contamination`: ``contamination.json`` (:class:`ContaminationReport`) was made from this
  run's ``predictions.jsonl`` and flags only its items;
* :func:`board_averages`: every category's macro and micro average and its language and source slices
  from ``results.json`` (:class:`medsbench.records.results.CategoryResult`);
* :func:`board_usage`: tokens, time and cost per task and for the run (``results.json``'s ``usage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medsbench.errors import MedsbenchError
from medsbench.ids import check_name, check_text
from medsbench.records.results import Average

if TYPE_CHECKING:
    from medsbench.records import PredictionRow
    from medsbench.records.contamination import ContaminationReport
    from medsbench.records.results import Average, Results

ALL = "all"  # slice kind of a whole category


@dataclass(frozen=True)
class BoardAverage:
    """One metric of one average (macro or micro) of a category or of one of its slices, in one mode."""

    category: str
    slice_kind: str  # all | language | source
    slice_key: str  # "" for the whole category
    average: str  # macro | micro
    mode: str
    metric: str
    value: float
    ci_lo: float | None
    ci_hi: float | None
    n: int
    n_tasks: int
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class BoardUsage:
    """Tokens, time and cost of one task of a run, or of the whole run (``task_id`` "")."""

    task_id: str
    n_items: int
    prompt_tokens: int | None
    output_tokens: int | None
    n_tokens_unknown: int
    item_seconds: float | None
    cost_usd: float | None
    cost_per_1k_items_usd: float | None
    price: dict[str, Any] | None = None  # the run row only: the price the cost was computed with


def check_contamination(report: ContaminationReport | None, rows: list[PredictionRow], predictions_sha256: str,
                        where: str) -> None:
    """``contamination.json`` belongs to this run: made from this predictions.jsonl, naming only its items."""
    if report is None:
        return
    again = "check the run again (medsbench contam RUN --against ...) or move contamination.json away"
    if report.predictions_sha256 != predictions_sha256:
        raise MedsbenchError(f"contamination.json was made from another predictions.jsonl (sha256 differs): {again}",
                             where=where)
    items = {(r.task_id, r.id) for r in rows}
    for flag in report.items:
        if (flag.task_id, flag.id) not in items:
            raise MedsbenchError(f"contamination.json flags {flag.task_id} item {flag.id!r}, which this run does not "
                                 f"have: {again}", where=where)
    for tid in report.tasks:
        check_name(tid, "task id", where)
    for category in report.categories:
        check_name(category, "category", where)


def _rows(category: str, kind: str, key: str, average: str, avg: Average, tasks: list[str]) -> list[BoardAverage]:
    out = []
    for mode, metrics, cis in (("strict", avg.metrics, avg.ci), ("reference", avg.reference, avg.reference_ci)):
        for metric, value in sorted(metrics.items()):
            lo, hi = cis.get(metric, (None, None))
            out.append(BoardAverage(category, kind, key, average, mode, metric, float(value), lo, hi, avg.n,
                                    avg.n_tasks, tuple(tasks)))
    return out


def board_averages(results: Results, where: str) -> list[BoardAverage]:
    """Every category's macro and micro averages (with CIs) and those of its language and source slices."""

    out: list[BoardAverage] = []
    for category, c in sorted(results.categories.items()):
        check_name(category, "category", where)
        if not c.tasks:
            continue
        macro = Average(n_tasks=c.n_tasks, n=c.n or 0, metrics=c.metrics, reference=c.reference, ci=c.ci,
                        reference_ci=c.reference_ci)
        out += _rows(category, ALL, "", "macro", macro, c.tasks)
        if c.micro is not None:
            out += _rows(category, ALL, "", "micro", c.micro, c.tasks)
        for kind, slices in sorted(c.slices.items()):
            if kind not in ("language", "source"):
                raise MedsbenchError(f"{category}: unknown slice kind {kind!r}", where=where)
            for key, sl in sorted(slices.items()):
                check_text(key, f"{kind} slice", where, max_len=120)
                out += _rows(category, kind, key, "macro", sl.macro, sl.tasks)
                if sl.micro is not None:
                    out += _rows(category, kind, key, "micro", sl.micro, sl.tasks)
    return out


def board_usage(results: Results) -> list[BoardUsage]:
    """Per task and for the run: tokens (None: unknown), item seconds and cost (None: not priced or unknown)."""
    out = []
    entries = [(tid, t.usage) for tid, t in results.tasks.items() if t.usage is not None]
    if results.usage is not None:
        entries.append(("", results.usage))
    for tid, u in entries:
        out.append(BoardUsage(tid, u.n_items, u.prompt_tokens, u.output_tokens, u.n_tokens_unknown, u.item_seconds,
                              u.cost_usd, u.cost_per_1k_items_usd,
                              results.price.model_dump() if tid == "" and results.price is not None else None))
    return out


__all__ = ["ALL", "BoardAverage", "BoardUsage", "board_averages", "board_usage", "check_contamination"]
