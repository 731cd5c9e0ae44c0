"""``Results``: ``results.json``, per task and category, both scoring modes, CIs, coverage.

Written by :mod:`medsbench.metrics` (``score_predictions`` / ``write_results``), read by
:mod:`medsbench.board`, ``medsbench compare`` and the eval summary table.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from medsbench.prices import Price
from medsbench.records.base import SCHEMA_VERSION, Record, load_model, save_model

CI = tuple[float, float]


class Reliability(Record):
    """A reliability diagram's data: per confidence bin its item count, mean confidence and accuracy
    (0-1; None for an empty bin)."""

    edges: list[float]
    counts: list[int]
    confidence: list[float | None]
    accuracy: list[float | None]


class LoglikVariant(Record):
    """Likelihood scoring of one variant (letter or option text) of a task: accuracy of the top
    log-likelihood (``accuracy``), of the top per-character and per-byte log-likelihood
    (``acc_norm``, ``acc_bytes``, as lm-evaluation-harness names them), and the calibration of the
    options' softmax probabilities (``confidence`` and ``ece`` 0-100, ``brier`` 0-2)."""

    n: int
    metrics: dict[str, float]
    ci: dict[str, CI] = Field(default_factory=dict)
    reliability: Reliability


class LoglikTaskResult(Record):
    primary: str  # the variant whose choice is each row's output (and the board's column)
    n_excluded: int = 0  # scored items without exactly one gold option among the options (not in these numbers)
    variants: dict[str, LoglikVariant]
class Usage(Record):
    """Tokens and generation time of a set of answered items (failed items are not counted).

    A total is None (unknown) when any counted item lacks it (a backend that does not report
    tokens): never a 0 and never a sum over the items that happen to report it.
    """

    n_items: int  # answered items counted
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    n_tokens_unknown: int = 0  # items whose prompt or output token count was not reported
    item_seconds: float | None = None  # sum of each item's generation time as recorded (cached items: when made)
    cost_usd: float | None = None  # with a price (``--price``/``--prices``) and known tokens
    cost_per_1k_items_usd: float | None = None


class TaskResult(Record):
    category: str
    language: str
    scorer: str | None = None  # the registered scorer's name
    n: int  # items scored (failed items excluded)
    n_reference: int  # items the official script counts
    n_failed: int = 0  # items without an answer (backend failure): missing, not zero
    coverage: float = 1.0  # n / (n + n_failed)
    metric: str  # the primary metric of the task's scorer
    metrics: dict[str, float]  # strict mode
    reference: dict[str, float]  # reference mode (the official scripts' semantics)
    ci: dict[str, CI] = Field(default_factory=dict)
    reference_ci: dict[str, CI] = Field(default_factory=dict)
    parse_failure_rate: float | None = None  # None for text tasks (nothing to parse) and tasks without items
    empty_rate: float | None = 0.0  # None when every item failed
    hit_cap_rate: float | None = None  # share of generations that stopped at the token limit
    majority_baseline: float | None = None  # closed-label tasks: accuracy (0-100) of always answering the top gold
    majority_label: str | None = None  # that gold label
    degenerate: bool = False  # one gold label on >= 95% of the scored items
    # closed-label tasks: where the strict label set came from ("scorer", "catalog", "task file",
    # "scored golds", joined with " + "); None for tasks without a label set
    label_source: str | None = None
    n_without_gold: int = 0
    loglik: LoglikTaskResult | None = None  # --scoring loglik: per variant accuracy, acc_norm and calibration
    source: str | None = None  # the dataset the task comes from (catalog ``dataset``): the source slices' key
    usage: Usage | None = None  # tokens, time and cost of the task's answered items


class Average(Record):
    """An average over a set of tasks in both scoring modes, with 95% bootstrap CIs.

    ``macro``: the mean of the tasks' metrics (what the official scripts report per category); its
    CI resamples each task's items within the task. ``micro``: the metric of the tasks' items pooled
    (only where the tasks share one statistics kind per mode); its CI resamples the pooled items.
    """

    n_tasks: int
    n: int  # items (strict mode)
    metrics: dict[str, float]  # strict mode
    reference: dict[str, float]
    ci: dict[str, CI] = Field(default_factory=dict)
    reference_ci: dict[str, CI] = Field(default_factory=dict)


class SliceResult(Record):
    """One language or one source (dataset) of a category: its tasks, their macro and micro averages."""

    tasks: list[str]
    macro: Average
    micro: Average | None = None  # None: the tasks' items cannot be pooled (``micro_note`` says why)
    micro_note: str | None = None


class CategoryResult(Record):
    """A category: ``metrics``/``reference`` are its **macro** average (the mean of its tasks, as the
    official scripts report), ``ci``/``reference_ci`` their CIs; ``micro`` pools its items; ``slices``
    break it down by ``language`` and by ``source`` (dataset) where it mixes them."""

    n_tasks: int  # tasks with metrics (macro-averaged)
    tasks: list[str]
    missing_tasks: list[str] = Field(default_factory=list)  # every item failed: not in the average
    metric: str | None = None  # the primary metric of the category's default scorer
    metrics: dict[str, float]
    reference: dict[str, float]
    average: str = "macro"  # what ``metrics``/``reference`` are
    n: int | None = None  # items scored (strict mode)
    ci: dict[str, CI] = Field(default_factory=dict)  # of the macro average
    reference_ci: dict[str, CI] = Field(default_factory=dict)
    micro: Average | None = None
    micro_note: str | None = None
    slices: dict[str, dict[str, SliceResult]] = Field(default_factory=dict)  # "language"/"source" -> key -> slice
    loglik: dict[str, dict[str, float]] | None = None  # --scoring loglik: variant -> macro average of its tasks


class PooledResult(Record):
    tasks: list[str]
    n: int
    metrics: dict[str, float]
    reference: dict[str, float]


class InputFile(Record):
    path: str
    sha256: str


class Bootstrap(Record):
    resamples: int
    seed: int
    level: float = 0.95


class Results(Record):
    schema_version: int = SCHEMA_VERSION
    medsbench_version: str
    inputs: list[InputFile] = Field(default_factory=list)
    n_rows: int
    n_failed: int = 0  # rows of failed items (missing from every metric)
    tasks: dict[str, TaskResult]
    categories: dict[str, CategoryResult]
    pooled: dict[str, PooledResult] = Field(default_factory=dict)
    unknown_task_ids: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    reference_deviations: list[str] = Field(default_factory=list)
    protocol: str | None = None
    protocol_deviations: list[str] = Field(default_factory=list)
    bootstrap: Bootstrap
    scoring: Literal["generate", "loglik"] = "generate"  # how the outputs were made (EvalConfig.scoring)
    calibration_binning: str | None = None  # loglik: how ECE bins the confidences
    usage: Usage | None = None  # the run's tokens, time and cost (all tasks' answered items)
    price: Price | None = None  # the price ``usage.cost_usd`` was computed with (None: not priced)

    def save(self, path: str | os.PathLike) -> None:
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Results:
        return load_model(cls, path, "results file")
