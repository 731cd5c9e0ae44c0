"""``JudgedResults``: ``judged.json`` of a run folder, the judged (model-graded) scoring mode.

Written by :mod:`medsbench.judge` (``medsbench judge RUN``), read by :mod:`medsbench.board` and the
``medsbench judge --report`` view. Judged scores are a third scoring mode beside the reference
and strict metrics of ``results.json``; they are never mixed into those numbers.

Scores are on the rubric scale (1..5). A judgement whose reply could not be parsed (after one
retry) or whose request failed is missing from the means, never a score.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from medsbench.ids import is_name
from medsbench.records.base import SCHEMA_VERSION, Record, load_model, save_model

MAX_SPEC = 2000  # characters of a judge's (redacted) model spec or of the judged run's path


def _bounded_text(value: str, what: str) -> str:
    """``value`` if it is printable text of at most :data:`MAX_SPEC` characters (read back from a file)."""
    if len(value) > MAX_SPEC or not value.isprintable():
        raise ValueError(f"{what} {value[:60]!r} is not printable text of at most {MAX_SPEC} characters")
    return value

class JudgementRow(Record):
    """One line of ``judgements.jsonl``: one judge's reply to one item (or probe), for audits and the board."""

    task_id: str
    id: str | None = None
    probe: str | None = None  # the probe kind for a sanity probe, None for a real item
    judge: str
    rubric: str | None = None
    score: int | None = None
    status: str
    retried: bool = False
    error: str | None = None
    reply: str = ""
    prompt_tokens: int | None = None
    output_tokens: int | None = None


class JudgeInfo(Record):
    """One judge of a judged run. Read back from a file another stage wrote: the name must be a
    :data:`medsbench.ids.NAME` and the spec printable text of bounded length, checked where it is read."""

    name: str  # the label used as key in the per-task tables
    spec: str  # model spec, credentials redacted
    identity: dict  # backend identity (part of the cache key)
    requests: int = 0  # requests sent in this invocation (cache misses, retries included)
    cached: int = 0  # judgements answered from the cache in this invocation
    errors: int = 0  # requests that failed (HTTP/backend errors): missing, retried on the next run
    prompt_tokens: int | None = None  # over every judgement of this file (cached ones too), where reported
    output_tokens: int | None = None
    new_prompt_tokens: int | None = None  # spent in this invocation
    new_output_tokens: int | None = None
    cost_usd: float | None = None  # from --price, over every judgement of this file

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_name(value):
            raise ValueError(f"judge name {value[:60]!r} is not a valid name (letters, digits, '.', '_', '-'; "
                             "at most 128 characters)")
        return value

    @field_validator("spec")
    @classmethod
    def _spec(cls, value: str) -> str:
        return _bounded_text(value, "judge spec")


class ScoreSummary(Record):
    n: int  # items asked
    n_scored: int
    mean: float | None = None
    ci95: list[float] | None = None
    parse_failures: int = 0
    parse_failure_rate: float | None = None  # parse failures / answered (requests that came back)
    errors: int = 0
    retried: int = 0  # first replies that needed the format reminder
    distribution: dict[str, int] = Field(default_factory=dict)  # score -> count


class Agreement(Record):
    n_items: int  # items scored by at least two judges
    krippendorff_alpha: float | None = None  # ordinal
    cohen_kappa: float | None = None  # quadratic-weighted, two judges only
    exact: float | None = None  # share of items where all judges gave the same score
    within_one: float | None = None  # share where max - min <= 1
    notes: list[str] = Field(default_factory=list)


class ProbeSummary(Record):
    n: int  # probes built
    n_scored: int  # probes the judge scored (pass rate is over these)
    passed: int = 0
    pass_rate: float | None = None
    mean_score: float | None = None


class TaskJudged(Record):
    category: str | None = None
    language: str | None = None
    rubric: str  # id@version
    n: int  # predictions judged (failed predictions excluded)
    n_failed_predictions: int = 0  # rows with an error: not judged
    judges: dict[str, ScoreSummary]
    jury: ScoreSummary  # per item mean over the judges that scored it
    agreement: Agreement | None = None
    rouge_l_spearman: dict[str, float | None] = Field(default_factory=dict)  # judge or "jury" -> rho
    probes: dict[str, dict[str, ProbeSummary]] = Field(default_factory=dict)  # judge or "jury" -> kind -> summary


class CategoryJudged(Record):
    """Macro average over the category's tasks (as results.json averages categories)."""

    tasks: list[str]
    n: int  # items judged over those tasks
    means: dict[str, float | None]  # judge or "jury" -> mean of the task means (tasks without a score left out)


class JudgedResults(Record):
    schema_version: int = SCHEMA_VERSION
    run: str
    model: str | None = None  # the judged run's model spec (from its manifest)
    predictions_sha256: str | None = None  # of the predictions.jsonl that was judged (older files: None)
    created: str
    template: str  # prompt template id@version
    rubrics: dict[str, str]  # rubric id -> id@version
    probes_version: int | None = None
    scale: list[int] = Field(default_factory=lambda: [1, 5])
    judges: list[JudgeInfo]
    tasks: dict[str, TaskJudged]
    categories: dict[str, CategoryJudged] = Field(default_factory=dict)
    probe_totals: dict[str, dict[str, ProbeSummary]] = Field(default_factory=dict)  # over all tasks
    cache: str | None = None
    notes: list[str] = Field(default_factory=list)

    @field_validator("run")
    @classmethod
    def _run(cls, value: str) -> str:
        return _bounded_text(value, "run")

    def save(self, path: str | os.PathLike) -> Path:
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> JudgedResults:
        """Read a judged results file; one-line error on a bad file."""
        return load_model(cls, path, "judged results file")
