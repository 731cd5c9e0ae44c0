"""``Results``: ``results.json``, per task and category, both scoring modes, CIs, coverage.

Written by :mod:`medsbench.metrics` (``score_predictions`` / ``write_results``), read by
:mod:`medsbench.board`, ``medsbench compare`` and the eval summary table.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

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


class CategoryResult(Record):
    n_tasks: int  # tasks with metrics (macro-averaged)
    tasks: list[str]
    missing_tasks: list[str] = Field(default_factory=list)  # every item failed: not in the average
    metric: str | None = None  # the primary metric of the category's default scorer
    metrics: dict[str, float]
    reference: dict[str, float]
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

    def save(self, path: str | os.PathLike) -> None:
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Results:
        return load_model(cls, path, "results file")
