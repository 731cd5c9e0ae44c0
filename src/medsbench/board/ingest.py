"""Ingest: a run folder -> a typed :class:`BoardRun` (pure functions; no SQL, no store).

:func:`read_run_folder` is the one place that reads a run folder (``manifest.json``,
``predictions.jsonl``, ``results.json``, ``judged.json`` and ``judgements.jsonl``, through their
stage records). Everything read is untrusted and checked here, where it is read:

- identifiers (:func:`check_identifiers`): task ids, run and judge names match
  :data:`medsbench.ids.NAME`, instance ids :func:`medsbench.ids.check_item_id`, model names
  :func:`medsbench.board.names.check_model_name`;
- the plan (:func:`check_plan`): every row belongs to a task ``manifest.json`` planned, no item
  appears twice, each task has exactly the rows planned (fewer only in an unfinished run published
  with ``allow_partial``), and, where the test file is available unchanged, every instance id is one
  of its instances;
- completeness (failed items are missing, never a 0), protocol, and that ``results.json`` and
  ``judged.json`` were made from this ``predictions.jsonl``.

Baselines and label statistics come from the full test file recorded in the manifest
(:func:`task_file_stats`, sha256 verified), never from the run's sample. Accuracy CIs are Wilson
intervals (:func:`wilson_ci`); other metrics keep the scorer's bootstrap CIs. Per-item verdicts come
from :func:`medsbench.metrics.item_verdicts`, the strict parse per item from the
scoring engine's per-item statistics.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsbench.board.flags import suspicion_flags
from medsbench.board.measures import BoardAverage, BoardUsage, board_averages, board_usage, check_contamination
from medsbench.board.names import LOGLIK_SUFFIX, REPORTED_PREFIX, check_model_name, pooled_task_id
from medsbench.errors import MedsbenchError, require
from medsbench.fileio import sha256_file, sha256_text
from medsbench.metrics import item_verdicts
from medsbench.records.folder import CONTAMINATION, JUDGED, JUDGEMENTS, MANIFEST, PREDICTIONS, RESULTS, RunFolder
from medsbench.records.folder import check_plan as check_run_plan
from medsbench.records.judged import JudgementRow
from medsbench.ids import check_item_id, check_name, check_text
from medsbench.redact import redact
from medsbench.tasks.catalog import catalog
from medsbench.metrics import scorer_for_task
from medsbench.tasks.format import iter_instances, read_meta
from medsbench.tasks.labels import is_degenerate, label_distribution, majority_baseline
from medsbench.judge.reliability import unusable_judges
from medsbench.metrics import primary_metric
from medsbench.metrics import score_items
from medsbench.metrics import reference as ref_mode

if TYPE_CHECKING:
    from medsbench.records import PredictionRow
    from medsbench.records.contamination import ContaminationReport
    from medsbench.records.judged import JudgedResults
    from medsbench.records.manifest import RunManifest
    from medsbench.records.results import Results

INGEST_VERSION = 5  # bump when the same files give a different BoardRun (re-adding then updates)
RUN_KINDS = ("measured", "submission")
STATUSES = ("pending", "approved")
POOLED_CATEGORY = "summarization"  # pooled groups (MIMIC-IV CT/MRI reports) are report summarization
MAX_EXAMPLE = 1500  # characters of the example item shown on a task page
MAX_LABELS = 40  # label distribution rows kept per task file (the rest are summed)
PARSE_EMPTY = "empty output"
PARSE_NONE = "no answer the strict parser accepts (no option or label found, or more than one)"
UNKNOWN_FILE = "baseline unknown (task file not available)"
CHANGED_FILE = "baseline unknown (the task file changed since the run: sha256 differs)"
NO_FILE = "baseline unknown (manifest.json records no test file)"


@dataclass(frozen=True)
class AddOptions:
    """How a run is published (``medsbench board add`` options)."""

    model_name: str | None = None  # default: the model spec's display name
    kind: str = "measured"  # measured | submission
    status: str = "approved"  # approved | pending
    description: str | None = None
    link: str | None = None  # http(s) link to the model card
    size: str | None = None
    run_name: str | None = None  # default: the run folder's name
    allow_partial: bool = False  # accept failed items or an unfinished run (coverage is shown)
    baseline: str | None = None  # a stored run this one is compared with


@dataclass(frozen=True)
class RunFiles:
    """A run folder as read: its stage records and the sha256 of each file."""

    folder: Path
    manifest: RunManifest
    rows: list[PredictionRow]
    results: Results
    judged: JudgedResults | None
    judgements: list[JudgementRow]
    sha256: dict[str, str]  # file name -> sha256
    contamination: ContaminationReport | None = None


def read_run_folder(run_dir: str | os.PathLike[str]) -> RunFiles:
    """Read a run folder through :class:`medsbench.records.folder.RunFolder` (the one reader of run folders).

    The rows are read with their identifiers checked; they are checked against the manifest's plan in
    :func:`check_plan` (where an unfinished run published with ``--allow-partial`` may hold fewer).
    """
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise MedsbenchError("run folder not found", where=str(folder.path))
    if not folder.has_results():
        raise MedsbenchError("results.json missing (score the run first: medsbench score)", where=str(folder.path))
    if not folder.has_predictions():
        raise MedsbenchError("predictions.jsonl missing", where=str(folder.path))
    manifest = folder.manifest()
    results = folder.results()
    rows = folder.predictions(plan=False)
    sha = {RESULTS: folder.sha256(folder.results_path), PREDICTIONS: folder.predictions_sha256()}
    judged, judgements = None, []
    if folder.has_judged():
        judged = folder.judged()
        sha[JUDGED] = folder.sha256(folder.judged_path)
        if folder.has_judgements():
            judgements = folder.judgements()
            sha[JUDGEMENTS] = folder.sha256(folder.judgements_path)
    contamination = None
    if folder.has_contamination():
        contamination = folder.contamination()
        sha[CONTAMINATION] = folder.sha256(folder.contamination_path)
    return RunFiles(folder.path, manifest, rows, results, judged, judgements, sha, contamination)


# -- checks --------------------------------------------------------------------------------------


def check_identifiers(files: RunFiles) -> None:
    """Every identifier read from the run folder matches the grammar of :mod:`medsbench.ids`."""
    m, res, folder = files.manifest, files.results, files.folder
    for tid in m.tasks:
        check_name(tid, "task id", str(folder / MANIFEST))
    for r in files.rows:
        check_name(r.task_id, "task id", r.where)
        check_item_id(r.id, r.where)
    where = str(folder / RESULTS)
    for tid in [*res.tasks, *(t for c in res.categories.values() for t in c.tasks)]:
        check_name(tid, "task id", where)
    for key in [*res.categories, *res.pooled, *(t for p in res.pooled.values() for t in p.tasks)]:
        check_name(key, "category or group", where)
    if files.judged is not None:
        j, where = files.judged, str(folder / JUDGED)
        for name in [x.name for x in j.judges] + list(j.probe_totals):
            check_name(name, "judge name", where)
        for tid, t in j.tasks.items():
            check_name(tid, "task id", where)
            for name in [*t.judges, *t.probes]:
                check_name(name, "judge name", where)
        for key, c in j.categories.items():
            check_name(key, "category", where)
            for name in [*c.tasks, *c.means]:
                check_name(name, "task id or judge name", where)
    for n, row in enumerate(files.judgements, 1):
        where = f"{folder / JUDGEMENTS}:{n}"
        check_name(row.task_id, "task id", where)
        check_name(row.judge, "judge name", where)
        if row.probe is None:
            check_item_id(row.id, where)


def check_plan(files: RunFiles, allow_partial: bool) -> dict[str, int]:
    """Rows per task, after checking them against the manifest's plan: a finished run holds exactly the
    planned items (:func:`medsbench.records.folder.check_plan`: tasks, counts, instance ids); an unfinished
    run published with ``--allow-partial`` may hold fewer, never others or more."""
    m = files.manifest
    where = str(files.folder / PREDICTIONS)
    if m.status == "finished":
        check_run_plan(m, files.rows, where)
    seen: dict[tuple[str, str | None], str | None] = {}
    counts: Counter[str] = Counter()
    for r in files.rows:
        if r.task_id not in m.tasks:
            raise MedsbenchError(f"a row of task {r.task_id}, which manifest.json never planned", where=r.where)
        key = (r.task_id, r.id)
        if key in seen:
            raise MedsbenchError(f"duplicate row: {r.task_id} item {r.id!r} (first at {seen[key]})", where=r.where)
        seen[key] = r.where
        counts[r.task_id] += 1
    unfinished = m.status != "finished"
    for tid, t in m.tasks.items():
        got = counts.get(tid, 0)
        if got > t.n or (got < t.n and not (unfinished and allow_partial)):
            raise MedsbenchError(f"{tid} has {got} row(s), manifest.json planned {t.n}"
                                 + (" (an unfinished run is accepted with --allow-partial)" if got < t.n else ""),
                                 where=where)
    for tid in files.results.tasks:
        if tid not in m.tasks:
            raise MedsbenchError(f"results.json scores {tid}, which manifest.json never planned: score the run again "
                                 "(medsbench score)", where=str(files.folder / RESULTS))
    return dict(counts)


def check_planned_ids(files: RunFiles, stats: dict[str, TaskFileInfo]) -> None:
    """Where a task's test file is available unchanged, every row's id is one of its instances."""
    for r in files.rows:
        info = stats.get(r.task_id)
        if info is not None and info.stats is not None and r.id not in info.ids:
            raise MedsbenchError(f"{r.task_id} item {r.id!r} is not an instance of the test file the run planned "
                                 f"({info.path})", where=r.where)


def check_complete(files: RunFiles, allow_partial: bool) -> bool:
    """Refuse unfinished runs and runs with failed items (unless ``allow_partial``); True when partial."""
    m, results, rows = files.manifest, files.results, files.rows
    where = str(files.folder / MANIFEST)
    resume = f"medsbench eval --resume --out {files.folder}"
    if m.status in ("running", "scoring"):
        raise MedsbenchError(f"run is {m.status} (manifest status); finish it first: {resume}", where=where)
    failed_rows = Counter(r.task_id for r in rows if r.failed)
    for tid, n in sorted(failed_rows.items()):
        t = results.tasks.get(tid)
        if t is not None and t.n_failed < n:
            raise MedsbenchError(
                f"results.json counts {n - t.n_failed} failed item(s) of {tid} as answers (a failed item is missing, "
                "not a 0); score the run again with this medsbench: medsbench score", where=str(files.folder / RESULTS))
    n_failed = max(sum(failed_rows.values()), sum(t.n_failed for t in results.tasks.values()),
                   int(m.counts.get("failed", 0) or 0))
    if not any(t.n > 0 for t in results.tasks.values()):
        raise MedsbenchError(f"no item of this run was answered ({n_failed} failed): nothing was measured, nothing to "
                             f"publish; retry with: {resume}", where=where)
    problems = []
    if m.status != "finished":
        problems.append(f"run is {m.status} (manifest status)")
    if n_failed:
        problems.append(f"{n_failed} item(s) failed (missing, not scored)")
    if problems and not allow_partial:
        raise MedsbenchError(f"{'; '.join(problems)}: retry the failed items with: {resume}; or publish it with "
                             "--allow-partial (the board then shows the coverage of each score)", where=where)
    return bool(problems)


def check_scored_from(files: RunFiles) -> str:
    """``results.json`` was scored from this ``predictions.jsonl`` and agrees with the manifest's protocol;
    returns the protocol."""
    res, m = files.results, files.manifest
    where = str(files.folder / RESULTS)
    for scored in res.inputs:
        if Path(scored.path).name == PREDICTIONS and scored.sha256 != files.sha256[PREDICTIONS]:
            raise MedsbenchError("results.json was scored from another version of predictions.jsonl (sha256 differs); "
                                 "score the run again: medsbench score", where=where)
    if res.protocol is not None and res.protocol != m.protocol:
        raise MedsbenchError(f"results.json says protocol {res.protocol!r}, manifest.json says {m.protocol!r}: "
                             "re-score the run (medsbench score)", where=where)
    scoring = m.config.scoring if m.config is not None else "generate"
    if res.scoring != scoring:
        raise MedsbenchError(f"results.json says scoring {res.scoring!r}, manifest.json says {scoring!r}: "
                             "re-score the run (medsbench score)", where=where)
    protocol = res.protocol or m.protocol
    # likelihood-scored runs are another protocol: never ranked in a column with generated answers
    return f"{protocol}{LOGLIK_SUFFIX}" if scoring == "loglik" else protocol


def check_judged(files: RunFiles) -> None:
    """``judged.json`` (and ``judgements.jsonl``) judged this run's predictions."""
    judged = files.judged
    if judged is None:
        return
    path = files.folder / JUDGED

    def refuse(why: str) -> None:
        raise MedsbenchError(f"judged.json does not belong to this run ({why}); judge the run again (medsbench judge "
                             f"{files.folder}) or move judged.json away", where=str(path))

    if judged.model is not None and judged.model != files.manifest.model:
        refuse(f"it judged model {judged.model!r}, manifest.json says {files.manifest.model!r}")
    judged_folder = Path(judged.run).name
    if judged_folder not in ("", ".", "..") and judged_folder != files.folder.resolve().name:
        refuse(f"it judged the run folder {judged_folder!r}")
    if judged.predictions_sha256 is not None and judged.predictions_sha256 != files.sha256[PREDICTIONS]:
        refuse("it judged another predictions.jsonl (sha256 differs)")
    names = [j.name for j in judged.judges]
    if not names or len(set(names)) != len(names):
        refuse("its judge list is empty or repeats a name")
    _check_judged_counts(files, refuse)
    items = {(r.task_id, r.id) for r in files.rows}
    for row in files.judgements:
        if row.judge not in names or (row.probe is None and (row.task_id, row.id) not in items):
            raise MedsbenchError(f"judgements.jsonl does not match this run (judge {row.judge!r}, {row.task_id} item "
                                 f"{row.id!r}); judge the run again", where=str(files.folder / JUDGEMENTS))


def _check_judged_counts(files: RunFiles, refuse: Any) -> None:

    judged = files.judged
    assert judged is not None
    names = {j.name for j in judged.judges}
    cat = catalog()
    present, answerable, failed = Counter[str](), Counter[str](), Counter[str]()
    category: dict[str, str | None] = {}
    for r in files.rows:  # what the judge selects: failed rows counted apart, rows without a reference skipped
        present[r.task_id] += 1
        entry = cat.get(r.task_id)
        category.setdefault(r.task_id, entry.category if entry else r.category)
        if r.failed:
            failed[r.task_id] += 1
        elif (r.reference or "").strip():
            answerable[r.task_id] += 1
    limited: set[int] = set()
    for tid, t in judged.tasks.items():
        if tid not in present:
            refuse(f"it judged task {tid}, which has no prediction in predictions.jsonl")
        if t.category is not None and t.category != category[tid]:
            refuse(f"{tid} is {category[tid]}, judged.json says {t.category}")
        if t.n_failed_predictions != failed[tid]:
            refuse(f"{tid}: it counts {t.n_failed_predictions} failed prediction(s), predictions.jsonl has {failed[tid]}")
        if t.n > answerable[tid]:
            refuse(f"{tid}: it judged {t.n} item(s), predictions.jsonl has {answerable[tid]} answered with a reference")
        if set(t.judges) != names or t.jury.n != t.n or any(s.n != t.n for s in t.judges.values()):
            refuse(f"{tid}: its per-judge tables do not match its judge list or item count")
        if t.n < answerable[tid]:
            limited.add(t.n)
    # Fewer items than predictions only as one --limit: every short task stops at the same count,
    # and no task judged in full has more items than that.
    if len(limited) > 1 or (limited and any(answerable[tid] > min(limited)
                                            for tid, t in judged.tasks.items() if t.n == answerable[tid])):
        refuse("its item counts match neither every prediction nor one --limit")


# -- identity -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is on the board, after every check of :func:`identify`."""

    name: str
    model: str
    kind: str
    status: str
    protocol: str
    partial: bool
    rows_per_task: dict[str, int]


def identify(files: RunFiles, options: AddOptions) -> RunIdentity:
    """Check the run folder and the options; the run's name, model and state on the board."""

    if options.kind not in RUN_KINDS:
        raise MedsbenchError(f"kind must be measured or submission, got {options.kind!r}")
    if options.status not in STATUSES:
        raise MedsbenchError(f"status must be one of {STATUSES}, got {options.status!r}")
    for value, what, limit in ((options.description, "description", 2000), (options.size, "size", 40),
                               (options.link, "link", 500)):
        if value is not None:
            check_text(value, what, max_len=limit)
    if options.link is not None and not options.link.startswith(("https://", "http://")):
        raise MedsbenchError(f"link must start with https:// or http://, got {options.link[:60]!r}")
    name = check_name(options.run_name or files.folder.resolve().name, "run name", str(files.folder))
    if name.startswith(REPORTED_PREFIX):
        raise MedsbenchError(f"run names starting with {REPORTED_PREFIX!r} are kept for published numbers; "
                             "rename the run folder", where=str(files.folder))
    check_identifiers(files)
    model = check_model_name(options.model_name or files.manifest.model_name)
    rows_per_task = check_plan(files, options.allow_partial)
    protocol = check_scored_from(files)
    check_judged(files)
    check_contamination(files.contamination, files.rows, files.sha256[PREDICTIONS], str(files.folder / CONTAMINATION))
    partial = check_complete(files, options.allow_partial)
    return RunIdentity(name, model, options.kind, options.status, protocol, partial, rows_per_task)


# -- task files: sizes, labels, baselines, versions -----------------------------------------------------


@dataclass(frozen=True)
class TaskFileStats:
    """What the board shows of one version (sha256) of a task's test file."""

    sha256: str
    task_id: str
    version: str  # short id: the first 8 hex characters of the sha256
    n_instances: int
    labels: dict[str, int] | None  # gold label -> count (closed-label tasks; the rarest summed as "(other labels)")
    n_labels: int | None
    majority_label: str | None
    majority_baseline: float | None  # percent accuracy of always answering the majority label
    degenerate: bool
    example: dict[str, str]  # id, input, output of the first instance (cut to MAX_EXAMPLE)
    source: dict[str, str | None]  # source, url, license, split_method (from the file's metadata)


@dataclass(frozen=True)
class TaskFileInfo:
    """A task's recorded test file: its stats, or why there are none."""

    path: str | None
    sha256: str | None
    stats: TaskFileStats | None
    note: str | None  # e.g. "baseline unknown (task file not available)"
    ids: frozenset[str] = field(default=frozenset(), repr=False)


def task_version(sha256: str) -> str:
    """The short id of a task file version (first 8 hex characters of its sha256)."""
    return sha256[:8]


def benchmark_version(shas: dict[str, str]) -> str:
    """The short id of the set of task files a run ran on: sha256 over sorted ``task_id:sha256`` lines."""
    text = "\n".join(f"{tid}:{sha}" for tid, sha in sorted(shas.items()))
    return sha256_text(text)[:8]


def task_file_stats(manifest: RunManifest) -> dict[str, TaskFileInfo]:
    """Per planned task, the full test file recorded in the manifest, read only if its sha256 still matches."""
    out = {}
    for tid, t in manifest.tasks.items():
        tf = t.files.get("test")
        if tf is None:
            out[tid] = TaskFileInfo(None, None, None, NO_FILE)
            continue
        path = Path(tf.path)
        if not path.is_absolute() and manifest.workspace:
            path = Path(manifest.workspace) / path
        if not path.is_file():
            out[tid] = TaskFileInfo(str(path), tf.sha256, None, UNKNOWN_FILE)
        elif sha256_file(path) != tf.sha256:
            out[tid] = TaskFileInfo(str(path), tf.sha256, None, CHANGED_FILE)
        else:
            stats, ids = _file_stats(tid, t.category, str(path), tf.sha256)
            out[tid] = TaskFileInfo(str(path), tf.sha256, stats, None, ids)
    return out


@functools.lru_cache(maxsize=64)
def _file_stats(task_id: str, category: str, path: str, sha256: str) -> tuple[TaskFileStats, frozenset[str]]:
    """Label statistics with the scorer's own gold-label rule, over every instance of the file."""

    cat = catalog()
    scorer = scorer_for_task(cat[task_id] if task_id in cat else task_id, category)
    labels: list[str] = []
    ids: set[str] = set()
    example: dict[str, str] = {}
    n = 0
    for inst in iter_instances(path):
        n += 1
        ids.add(inst.id)
        if not example:
            example = {"id": inst.id, "input": _cut(inst.input, MAX_EXAMPLE), "output": _cut(inst.target, MAX_EXAMPLE)}
        if scorer is not None and inst.target.strip() and (label := scorer.label_of(inst.target, inst.input)) is not None:
            labels.append(label)
    meta = read_meta(path)
    block = meta.get("medsbench")
    ours: dict[str, Any] = block if isinstance(block, dict) else {}
    source = {"source": _first(meta.get("Source")), "url": _first(meta.get("URL")),
              "license": _str(ours.get("license")), "split_method": _str(ours.get("split_method"))}
    counts = label_distribution(labels)
    top = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LABELS])
    if len(counts) > MAX_LABELS:
        top["(other labels)"] = sum(counts.values()) - sum(top.values())
    label, baseline = majority_baseline(labels)
    stats = TaskFileStats(
        sha256=sha256, task_id=task_id, version=task_version(sha256), n_instances=n,
        labels=top if labels else None, n_labels=len(counts) if labels else None, majority_label=label,
        majority_baseline=None if baseline is None else round(baseline, 2), degenerate=is_degenerate(labels),
        example=example, source=source)
    return stats, frozenset(ids)


def _first(value: Any) -> str | None:
    value = value[0] if isinstance(value, list) and value else value
    return _str(value)


def _str(value: Any) -> str | None:
    return value.strip()[:500] or None if isinstance(value, str) else None


def _cut(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more characters]"


def wilson_ci(correct: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy, in percent (scipy's ``binomtest``)."""
    stats = require("scipy.stats", "board", "accuracy confidence intervals")
    ci = stats.binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(100 * float(ci.low), 4), round(100 * float(ci.high), 4)


# -- the BoardRun -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardTask:
    """One task of a run: sizes, coverage, rates, the full-file baseline and the data version."""

    task_id: str
    category: str | None
    language: str | None
    metric: str | None
    n: int  # items scored
    n_reference: int | None  # items the official script counts
    n_failed: int  # failed items, and planned items never run (unfinished run): missing, not 0
    coverage: float | None
    n_planned: int | None
    n_total: int | None  # instances in the test file
    parse_failure_rate: float | None = None
    empty_rate: float | None = None
    majority_baseline: float | None = None
    majority_label: str | None = None
    degenerate: bool = False
    baseline_note: str | None = None
    file_sha256: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class BoardScore:
    """One metric of a task or category in one scoring mode."""

    key: str  # task id or category
    mode: str  # strict | reference
    metric: str
    value: float
    ci_lo: float | None = None
    ci_hi: float | None = None
    ci_method: str | None = None  # wilson | bootstrap
    n_tasks: int | None = None
    derived: bool = False


@dataclass(frozen=True)
class BoardItem:
    """One prediction as the item browser shows it."""

    seq: int
    task_id: str
    item_id: str
    input: str | None
    output: str | None
    reference: str | None
    prompt: str | None
    error: str | None
    correct: int | None  # official (reference) verdict: 1, 0 or None
    strict_correct: int | None
    parsed: bool | None  # strict parse; None where nothing is parsed (text tasks, failed items)
    parse_note: str | None
    extra: dict[str, Any]  # what the scorers read that the columns above lose (scoring_rows)


@dataclass(frozen=True)
class BoardJudgement:
    task_id: str
    item_id: str
    judge: str
    score: int | None
    status: str  # ok | parse_failure | error
    reply: str
    error: str | None


@dataclass(frozen=True)
class BoardCalibration:
    """One variant of a likelihood-scored task: accuracy, acc_norm and calibration with CIs (results.json)."""

    task_id: str
    variant: str  # letter | text
    primary: bool  # the variant whose choice is the rows' output
    n: int
    n_excluded: int
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    reliability: dict[str, list[Any]]  # edges, counts, confidence, accuracy


@dataclass(frozen=True)
class BoardRun:
    """Everything the store keeps of one published run."""

    name: str
    model: str
    kind: str
    status: str
    description: str | None
    link: str | None
    size: str | None
    protocol: str
    partial: bool
    flags: list[dict[str, Any]]
    manifest: dict[str, Any]  # redacted
    sha256: dict[str, str]
    fingerprint: str
    benchmark_version: str | None
    tasks: list[BoardTask]
    task_scores: list[BoardScore]
    category_scores: list[BoardScore]
    items: list[BoardItem]
    judged: JudgedResults | None
    unusable_judges: dict[str, str]
    judgements: list[BoardJudgement]
    task_files: list[TaskFileStats]
    rows: list[PredictionRow]  # the prediction rows (paired comparisons)
    calibration: list[BoardCalibration] = field(default_factory=list)  # likelihood-scored runs only
    contamination: ContaminationReport | None = None  # contamination.json: clean scores shown where present
    averages: list[BoardAverage] = field(default_factory=list)  # categories' macro/micro averages and slices
    usage: list[BoardUsage] = field(default_factory=list)  # tokens, time and cost per task and for the run


def fingerprint(files: RunFiles, ident: RunIdentity, options: AddOptions, stats: dict[str, TaskFileInfo]) -> str:
    """What makes a stored run current: re-adding a run whose fingerprint is unchanged does nothing."""
    state = {"files": files.sha256, "model": ident.model, "kind": ident.kind, "description": options.description,
             "link": options.link, "size": options.size, "ingest": INGEST_VERSION,
             "task_files": {tid: [i.sha256, i.note] for tid, i in sorted(stats.items())}}
    return sha256_text(json.dumps(state, sort_keys=True))


def build_board_run(files: RunFiles, ident: RunIdentity, options: AddOptions, stats: dict[str, TaskFileInfo]) -> BoardRun:
    """The typed record of a checked run (the slow part: per-item verdicts and parses)."""

    manifest = redact(files.manifest.model_dump(mode="json"))
    shas = {tid: i.sha256 for tid, i in stats.items() if i.sha256}
    tasks = _tasks(files, ident, stats)
    task_scores, category_scores = _scores(files, {t.task_id for t in tasks if t.n > 0})
    return BoardRun(
        name=ident.name, model=ident.model, kind=ident.kind, status=ident.status, description=options.description,
        link=options.link, size=options.size, protocol=ident.protocol, partial=ident.partial,
        flags=[f.as_dict() for f in suspicion_flags(files.rows)], manifest=manifest, sha256=dict(files.sha256),
        fingerprint=fingerprint(files, ident, options, stats),
        benchmark_version=benchmark_version(shas) if len(shas) == len(stats) and shas else None,
        tasks=tasks, task_scores=task_scores, category_scores=category_scores, items=_items(files.rows),
        judged=files.judged, unusable_judges=unusable_judges(files.judged) if files.judged else {},
        judgements=[BoardJudgement(j.task_id, str(j.id), j.judge, j.score, j.status, j.reply, j.error)
                    for j in files.judgements if j.probe is None],
        task_files=[i.stats for i in stats.values() if i.stats is not None], rows=list(files.rows),
        calibration=_calibration(files, {t.task_id for t in tasks if t.n > 0}),
        contamination=files.contamination, averages=board_averages(files.results, str(files.folder / RESULTS)),
        usage=board_usage(files.results))


def _calibration(files: RunFiles, answered: set[str]) -> list[BoardCalibration]:
    """The loglik block of each answered task of ``results.json`` (checked: finite numbers, known variants)."""
    out = []
    for tid, t in sorted(files.results.tasks.items()):
        if t.loglik is None or tid not in answered:
            continue
        for name, v in sorted(t.loglik.variants.items()):
            if not all(_is_number(x) for x in v.metrics.values()):
                raise MedsbenchError(f"{tid}: a loglik metric of variant {name} is not a number",
                                     where=str(files.folder / RESULTS))
            out.append(BoardCalibration(tid, name, name == t.loglik.primary, v.n, t.loglik.n_excluded,
                                        dict(v.metrics), {k: (float(a), float(b)) for k, (a, b) in v.ci.items()},
                                        v.reliability.model_dump(mode="json")))
    return out


def _tasks(files: RunFiles, ident: RunIdentity, stats: dict[str, TaskFileInfo]) -> list[BoardTask]:
    """One :class:`BoardTask` per planned task that has a row (a task none of whose items ran is left out)."""

    cat = catalog()
    failed_rows = Counter(r.task_id for r in files.rows if r.failed)
    out = []
    for tid, planned in sorted(files.manifest.tasks.items()):
        rows = ident.rows_per_task.get(tid, 0)
        t = files.results.tasks.get(tid)
        failed = failed_rows.get(tid, 0)
        if t is None and not failed:
            continue
        entry, info = cat.get(tid), stats[tid]
        n = t.n if t is not None else 0
        missing = (t.n_failed if t is not None else failed) + max(0, planned.n - rows)
        s = info.stats
        out.append(BoardTask(
            task_id=tid, category=(t.category if t is not None else None) or planned.category,
            language=t.language if t is not None else planned.language,
            metric=primary_metric(entry) if entry is not None else (t.metric if t is not None else None),
            n=n, n_reference=t.n_reference if t is not None else None, n_failed=missing,
            coverage=round(n / (n + missing), 4) if n + missing else None, n_planned=planned.n,
            n_total=planned.n_total, parse_failure_rate=t.parse_failure_rate if t is not None else None,
            empty_rate=t.empty_rate if t is not None else None,
            majority_baseline=s.majority_baseline if s else None, majority_label=s.majority_label if s else None,
            degenerate=s.degenerate if s else False, baseline_note=info.note, file_sha256=info.sha256,
            version=task_version(info.sha256) if info.sha256 else None))
    for group, p in sorted(files.results.pooled.items()):
        out.append(BoardTask(task_id=pooled_task_id(group), category=POOLED_CATEGORY, language=None,
                             metric=primary_metric(group), n=p.n, n_reference=None, n_failed=0, coverage=None,
                             n_planned=None, n_total=None))
    return out


def _scores(files: RunFiles, answered: set[str]) -> tuple[list[BoardScore], list[BoardScore]]:
    """Task and category scores of ``results.json``; accuracy CIs as Wilson intervals."""
    res = files.results
    tasks: list[BoardScore] = []
    values: dict[str, dict[tuple[str, str], float]] = {}
    for tid, t in sorted(res.tasks.items()):
        if tid not in answered:
            continue  # nothing answered: no score, never a 0
        for mode, metrics, cis, n in (("strict", t.metrics, t.ci, t.n), ("reference", t.reference, t.reference_ci,
                                                                          t.n_reference)):
            for metric, value in sorted(metrics.items()):
                if not _is_number(value):
                    continue
                values.setdefault(tid, {})[(mode, metric)] = float(value)
                lo, hi = cis.get(metric, (None, None))
                method = "bootstrap" if lo is not None else None
                correct = value * n / 100
                if metric == "accuracy" and n > 0 and abs(correct - round(correct)) < 0.05:
                    (lo, hi), method = wilson_ci(round(correct), n), "wilson"
                tasks.append(BoardScore(tid, mode, metric, float(value), lo, hi, method))
    cats: list[BoardScore] = []
    for ckey, c in sorted(res.categories.items()):
        members = [tid for tid in c.tasks if tid in res.tasks]
        kept = [tid for tid in members if tid in answered]
        if not kept:
            continue
        if len(kept) == len(members):
            for mode, metrics in (("strict", c.metrics), ("reference", c.reference)):
                cats += [BoardScore(ckey, mode, k, float(v), n_tasks=c.n_tasks) for k, v in sorted(metrics.items())
                         if _is_number(v)]
            continue
        # Some tasks of the category had no answer at all: the category is the mean of the answered ones.
        keys = sorted({k for tid in kept for k in values.get(tid, {})})
        cats += [BoardScore(ckey, mode, metric, round(sum(values[t][(mode, metric)] for t in kept) / len(kept), 4),
                            n_tasks=len(kept), derived=True)
                 for mode, metric in keys if all((mode, metric) in values.get(t, {}) for t in kept)]
    for group, p in sorted(res.pooled.items()):
        if p.n > 0:
            for mode, metrics in (("strict", p.metrics), ("reference", p.reference)):
                tasks += [BoardScore(pooled_task_id(group), mode, k, float(v)) for k, v in sorted(metrics.items())
                          if _is_number(v)]
    return tasks, cats


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _items(rows: Sequence[PredictionRow]) -> list[BoardItem]:
    """The browser's rows: verdicts in both modes and the strict parse, in file order."""
    verdicts = item_verdicts(rows)
    parses = strict_parses(rows)
    out = []
    for seq, (r, (ref_ok, strict_ok), (parsed, note)) in enumerate(zip(rows, verdicts, parses)):
        out.append(BoardItem(
            seq=seq, task_id=r.task_id, item_id=str(r.id), input=r.input, output=r.output,
            reference=r.reference if r.reference is not None else (r.references[0] if r.references else None),
            prompt=r.prompt, error=r.error, correct=ref_ok, strict_correct=strict_ok, parsed=parsed, parse_note=note,
            extra=row_extra(r)))
    return out


def strict_parses(rows: Sequence[PredictionRow]) -> list[tuple[bool | None, str | None]]:
    """Per row: whether strict mode could parse an answer, and why not (closed-answer tasks only)."""

    cat = catalog()
    closed = {tid for tid in {r.task_id for r in rows}
              if tid in cat and (s := scorer_for_task(cat[tid])) is not None and not s.is_text}
    positions: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.task_id in closed and not r.failed and not ref_mode.is_na(r.reference):
            positions.setdefault(r.task_id, []).append(i)
    out: list[tuple[bool | None, str | None]] = [(None, None)] * len(rows)
    if not positions:
        return out
    per_task, _, _ = score_items([rows[i] for idx in positions.values() for i in idx])
    for tid, items in per_task.items():
        for j, i in enumerate(positions.get(tid, [])):
            ok = bool(items.parsed[j])
            out[i] = (ok, None if ok else PARSE_EMPTY if bool(items.empty[j]) else PARSE_NONE)
    return out


def row_extra(r: PredictionRow) -> dict[str, Any]:
    """What the ``predictions`` columns lose of a row and the scorers read (:meth:`Store.scoring_rows`)."""
    extra: dict[str, Any] = {"category": r.category, "language": r.language}
    nulls = [k for k in ("input", "output", "reference") if getattr(r, k) is None]
    if nulls:
        extra["null"] = nulls
    if r.references != ([r.reference] if r.reference is not None else []):
        extra["references"] = r.references
    return extra


def ingest(run_dir: str | os.PathLike[str], options: AddOptions) -> BoardRun:
    """A run folder, checked, as a :class:`BoardRun` (what :func:`medsbench.board.publish.add_run` stores)."""
    files = read_run_folder(run_dir)
    ident = identify(files, options)
    stats = task_file_stats(files.manifest)
    check_planned_ids(files, stats)
    return build_board_run(files, ident, options, stats)


__all__ = ["AddOptions", "BoardCalibration", "BoardItem", "BoardJudgement", "BoardRun", "BoardScore", "BoardTask", "RunFiles",
           "RunIdentity", "TaskFileInfo", "TaskFileStats", "benchmark_version", "build_board_run", "check_identifiers",
           "check_plan", "fingerprint", "identify", "ingest", "read_run_folder", "task_file_stats", "task_version",
           "wilson_ci"]
