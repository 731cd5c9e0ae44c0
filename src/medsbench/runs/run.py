"""``run_eval``: plan -> cache lookup -> backend -> append predictions -> score.

Predictions are appended (and the cache committed) as each backend chunk finishes; at the end
``predictions.jsonl`` is rewritten in plan order (:mod:`medsbench.records.predictions`), so an
interrupted-and-resumed run ends with exactly the file an uninterrupted run writes (timings of
cached items come from the cache).

Before any compute is spent the runner checks, in this order: the settings (a ``--resume`` takes
them from ``manifest.json`` and refuses a conflicting flag), the protocol and the model spec, the
selected task files (the task-file rules), that the run folder and the cache folder are writable,
the run folder lock (one writer per run folder, held until the manifest says ``finished``) and, on
resume, the recorded task files' sha256. A failed item is a row with ``error`` set and no output:
it is missing from the scores and re-sent by ``--resume`` (errors are never cached).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from medsbench.errors import MedsbenchError
from medsbench.fileio import ensure_writable, exclusive_lock
from medsbench.models.base import Backend, Request, Response
from medsbench.models.spec import ModelSpec
from medsbench.redact import REDACTED, redact_text, redact_url
from medsbench.prompts.protocols import DEFAULT_PROTOCOL, get_protocol
from medsbench.records.manifest import (
    MANIFEST,
    ManifestTask,
    RunManifest,
    TaskFile,
    now,
)
from medsbench.records.results import Results
from medsbench.records.predictions import (
    PredictionRow,
    encode_prediction,
    read_predictions,
    row_from,
    write_official_csv,
    write_predictions,
)
from medsbench.runs.cache import ResultCache, cache_key
from medsbench.runs.checks import clean_stale_tmp, validate_selected, verify_task_files
from medsbench.runs.plan import (
    BUILD_HINT,
    Item,
    TaskPlan,
    file_hashes,
    load_definitions,
    plan_task,
    prompt_template_sha256,
    resolve_tasks,
)
from medsbench.runs.progress import (
    HEARTBEAT_SECONDS,
    Heartbeat,
    RunProgress,
    fmt_duration,
    progress_bar,
)
from medsbench.tasks.catalog import CatalogEntry
from medsbench.tasks.workspace import task_source

logger = logging.getLogger(__name__)

DEFAULT_WORKSPACE = Path("medsbench-work")
RUN_ARGS = ("tasks", "limit", "shots", "seed", "max_new_tokens", "prompt_style", "definitions", "protocol", "shard")
NOT_MEASURED = frozenset({"api_key_env"})  # backend options a --resume may change
MAX_ERRORS_SHOWN = 3  # distinct error messages kept per task for the summary

def protocol_deviations(name: str) -> list[str]:
    """The named protocol's deviations from the official scripts (recorded in the manifest)."""
    return list(get_protocol(name).deviations)


@dataclass
class RunResult:
    run_dir: Path
    manifest: RunManifest
    n_items: int = 0
    n_cached: int = 0
    n_generated: int = 0
    n_failed: int = 0
    n_truncated: int = 0
    results: Any = None  # what medsbench.metrics.score_predictions returned (None: not scored)
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # task id -> first distinct errors (redacted)
    limit: int | None = None  # a run limited to the first N items of each task is a sample
    rescored_only: bool = False  # resume found every prediction: scored again, no model loaded

    @property
    def status(self) -> str:
        return self.manifest.status


@dataclass
class Settings:
    """What a run measures: given by flags on a new run, read from manifest.json on ``--resume``."""

    tasks: str = "available"
    limit: int | None = None
    shots: int | None = None
    seed: int = 0
    max_new_tokens: int | None = None
    prompt_style: str = "official"
    definitions: str | None = None
    protocol: str = DEFAULT_PROTOCOL
    shard: str | None = None  # "I/N": this run answers the items at positions I, I+N, ... of each task
    backend_options: dict[str, Any] = field(default_factory=dict)

    def args(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in RUN_ARGS}
        out["backend_options"] = dict(self.backend_options)
        return out


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N) -> (I, N). Shard I answers the items at positions I, I+N, I+2N, ... of
    every task (after ``--limit``), so ``medsbench runs merge`` can interleave shards back into the
    unsharded order; prompts and demos depend only on (seed, task, item), never on the shard."""
    if spec is None:
        return None
    index, sep, count = spec.strip().partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise MedsbenchError(f"--shard must be I/N with 0 <= I < N (e.g. 0/2), got '{spec}'")
    return i, n


def shard_setting(spec: str | None) -> str | None:
    """The normalised ``I/N`` form of a ``--shard`` value (None stays None)."""
    parsed = parse_shard(spec)
    return None if parsed is None else f"{parsed[0]}/{parsed[1]}"


def generation_config(max_new_tokens: int, stop: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The generation settings hashed into an item's cache key (besides backend identity and prompt).

    Stop strings enter only when there are some, so keys of runs without them stay as they were.
    """
    config: dict[str, Any] = {"max_new_tokens": max_new_tokens, "greedy": True}
    if stop:
        config["stop"] = list(stop)
    return config


def redact_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """A backend identity fit for manifest.json: URLs without credentials."""
    def clean(v: Any) -> Any:
        if isinstance(v, str) and "://" in v:
            return redact_url(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    return {k: clean(v) for k, v in identity.items()}


def prediction_row(item: Item, resp: Response) -> PredictionRow:
    inst = item.instance
    failed = resp.error is not None
    return PredictionRow(
        task_id=item.task_id,
        id=inst.id,
        category=item.category,
        language=item.language,
        input=inst.input,
        output=None if failed else resp.text,
        reference=inst.target,
        references=list(inst.output),
        prompt=item.text,
        demo_ids=list(item.demo_ids),
        prompt_tokens=resp.prompt_tokens,
        output_tokens=resp.output_tokens,
        seconds=round(resp.seconds, 4),
        truncated=item.truncated,
        hit_cap=None if failed or resp.output_tokens is None else resp.output_tokens >= item.max_new_tokens,
        error=redact_text(resp.error) if resp.error is not None else None,
    )


Scorer = Callable[[Path], Results]  # predictions.jsonl -> results (medsbench.pipeline passes the metrics scorer)


def score(pred_path: Path, run_dir: Path, log: Callable[[str], None], scorer: Scorer) -> Any:
    """results.json from ``scorer``; None (with a warning) if scoring refused the predictions."""
    try:
        results = scorer(pred_path)
    except MedsbenchError as exc:  # the predictions stay; `medsbench eval --resume` re-scores after a fix
        log(f"[yellow]warning: scoring failed, results.json not written: {exc}[/yellow]")
        return None
    for source in results.inputs:
        if Path(source.path).resolve().parent == run_dir.resolve():
            source.path = Path(source.path).name  # relative to the run folder, which may move
    results.save(run_dir / "results.json")
    return results.model_dump(mode="json")


def _resume_settings(prev: RunManifest, run_dir: Path, given: dict[str, Any]) -> Settings:
    """The manifest's settings; a flag given with --resume that disagrees is refused in one line."""
    saved = prev.args
    settings = Settings(
        tasks=saved.get("tasks", "available"),
        limit=saved.get("limit"),
        shots=saved.get("shots"),
        seed=saved.get("seed", prev.seed),
        max_new_tokens=saved.get("max_new_tokens"),
        prompt_style=saved.get("prompt_style", "official"),
        definitions=saved.get("definitions"),
        protocol=saved.get("protocol", prev.protocol),
        shard=saved.get("shard"),
        backend_options=dict(saved.get("backend_options") or {}),
    )
    flags = {
        "tasks": "--tasks", "limit": "--limit", "shots": "--shots", "seed": "--seed",
        "max_new_tokens": "--max-new-tokens", "prompt_style": "--prompt-style", "definitions": "--definitions",
        "protocol": "--protocol", "shard": "--shard",
    }
    for key, flag in flags.items():
        value = given.get(key)
        if value is None:
            continue
        have = getattr(settings, key)
        if key == "definitions":
            value = str(Path(value).resolve())
        if value != have:
            _conflict(run_dir, flag, value, have)
    for key, value in (given.get("backend_options") or {}).items():
        if key in NOT_MEASURED:  # where the credentials come from does not change what is measured
            settings.backend_options[key] = value
        elif value is not None and settings.backend_options.get(key) != value:
            _conflict(run_dir, f"--{key.replace('_', '-')}", value, settings.backend_options.get(key))
    for key, flag, saved_path in (("workspace", "--workspace", prev.workspace), ("cache", "--cache", prev.cache)):
        value = given.get(key)
        if value is not None and saved_path is not None and Path(value).resolve() != Path(saved_path):
            _conflict(run_dir, flag, value, saved_path)
    model = given.get("model")
    if isinstance(model, str) and ModelSpec.parse(model).redacted() != prev.model:
        _conflict(run_dir, "--model", ModelSpec.parse(model).redacted(), prev.model)
    return settings


def _conflict(run_dir: Path, flag: str, value: Any, have: Any) -> None:
    shown = "setting (not given)" if have is None else repr(have)
    raise MedsbenchError(
        f"--resume takes its settings from {run_dir / MANIFEST}: {flag} {value} conflicts with the run's {shown} "
        f"(drop the flag, or start a new run with another --out)"
    )


def _read_journal(pred_path: Path) -> dict[tuple[str, str | None, str | None], PredictionRow]:
    """Answered rows of an interrupted run's predictions.jsonl, by (task id, item id, prompt).

    The file may end in a line torn by a kill: unreadable lines are skipped (their items are
    looked up in the cache or generated again). Failed rows are never reused.
    """
    found: dict[tuple[str, str | None, str | None], PredictionRow] = {}
    if not pred_path.is_file():
        return found
    with open(pred_path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                row = row_from(orjson.loads(raw), f"{pred_path}:{lineno}")
            except (orjson.JSONDecodeError, MedsbenchError):
                continue
            if row.error is None and row.output is not None:
                found[(row.task_id, row.id, row.prompt)] = row
    return found


def _all_predictions_present(run_dir: Path, manifest: RunManifest) -> bool:
    """True when predictions.jsonl holds every planned item, none failed (only scoring is left)."""
    pred_path = run_dir / "predictions.jsonl"
    if manifest.status not in ("scoring", "finished") or not pred_path.is_file():
        return False
    try:
        rows = read_predictions(pred_path, format="jsonl")
    except MedsbenchError:
        return False
    planned = {tid: t.n for tid, t in manifest.tasks.items()}
    have: dict[str, int] = {}
    for r in rows:
        if r.failed or r.output is None:
            return False
        have[r.task_id] = have.get(r.task_id, 0) + 1
    return have == planned


def run_eval(
    model: str | Backend | None,
    tasks: str | None = None,
    *,
    workspace: str | Path | None = None,
    out: str | Path | None = None,
    limit: int | None = None,
    shots: int | None = None,
    seed: int | None = None,
    batch_size: int | str | None = None,
    max_new_tokens: int | None = None,
    prompt_style: str | None = None,
    definitions: str | Path | None = None,
    protocol: str | None = None,
    shard: str | None = None,
    resume: bool = False,
    cache: str | Path | None = None,
    backend_options: dict[str, Any] | None = None,
    progress: bool | str = True,
    console: Any = None,
    scorer: Scorer | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> RunResult:
    """Evaluate ``model`` (a spec such as ``default`` or a Backend) on ``tasks``; returns the run summary.

    ``progress``: True/"auto" (a bar in a terminal, heartbeat lines otherwise), "bar", "log"
    (a line every ``heartbeat`` seconds) or False. With ``resume=True`` only ``out`` is needed:
    everything else comes from the run's manifest.json.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    log = console.print
    if limit is not None and limit < 1:
        raise MedsbenchError(f"--limit must be at least 1, got {limit}")
    given_options = {k: v for k, v in (backend_options or {}).items() if v is not None}

    # -- settings: flags for a new run, the manifest for --resume ---------------------------
    prev: RunManifest | None = None
    if resume:
        if out is None:
            raise MedsbenchError("--resume needs --out RUN_FOLDER")
        run_dir = Path(out)
        if not (run_dir / MANIFEST).is_file():
            raise MedsbenchError(f"nothing to resume: no {MANIFEST} in {run_dir}")
        prev = RunManifest.load(run_dir)
        given = {
            "tasks": tasks, "limit": limit, "shots": shots, "seed": seed, "max_new_tokens": max_new_tokens,
            "prompt_style": prompt_style, "definitions": definitions, "protocol": protocol,
            "shard": shard_setting(shard),
            "backend_options": given_options, "workspace": workspace, "cache": cache,
            "model": model,
        }
        settings = _resume_settings(prev, run_dir, given)
        ws = Path(prev.workspace) if prev.workspace else Path(workspace or DEFAULT_WORKSPACE)
        cache_path = Path(prev.cache) if prev.cache else ws / "cache.sqlite"
        if model is None:
            if REDACTED in prev.model:
                raise MedsbenchError(
                    f"the run's model spec held credentials (saved redacted: {prev.model}); "
                    f"give it again: medsbench eval --resume --out {run_dir} --model SPEC"
                )
            model = prev.model
        spec_name = prev.model
    else:
        if model is None:
            model = "default"
        settings = Settings(
            tasks=tasks or "available", limit=limit, shots=shots, seed=0 if seed is None else seed,
            max_new_tokens=max_new_tokens, prompt_style=prompt_style or "official",
            definitions=str(Path(definitions).resolve()) if definitions is not None else None,
            protocol=protocol or DEFAULT_PROTOCOL, shard=shard_setting(shard),
            backend_options=given_options,
        )
        ws = Path(workspace or DEFAULT_WORKSPACE)
        cache_path = Path(cache) if cache is not None else ws / "cache.sqlite"
        if isinstance(model, str):
            spec_name = ModelSpec.parse(model).redacted()
            default_dir = ws / "runs" / ModelSpec.parse(model).run_name
        else:
            spec_name = f"{getattr(model, 'name', 'backend')}:instance"
            default_dir = ws / "runs" / f"{getattr(model, 'name', 'backend')}-instance"
        run_dir = Path(out) if out is not None else default_dir
    deviations = protocol_deviations(settings.protocol)
    if isinstance(model, str):
        from medsbench.models import check_spec

        check_spec(model, **settings.backend_options)

    # -- a new run: the selection (medsbench.pipeline builds task files first with --build-from) ----
    selected = None
    if prev is None:
        selected = _select_tasks(settings.tasks, ws / "tasks", log)

    # -- places: writable, then ours alone ---------------------------------------------------
    ensure_writable(run_dir, "run folder")
    ensure_writable(cache_path.parent, "cache folder")
    with exclusive_lock(run_dir, "run folder"):
        clean_stale_tmp(run_dir)
        if prev is not None:
            prev = RunManifest.load(run_dir)  # re-read under the lock
            verify_task_files(prev)
            if _all_predictions_present(run_dir, prev):
                return _rescore(run_dir, prev, settings, log, scorer)
        return _run_locked(
            model, settings, prev=prev, ws=ws, run_dir=run_dir, cache_path=cache_path, spec_name=spec_name,
            deviations=deviations, batch_size=batch_size, selected=selected, progress=progress,
            console=console, scorer=scorer, heartbeat=heartbeat,
        )


def _select_tasks(selection: str, tasks_dir: Path, log: Callable[..., None]) -> tuple[list[CatalogEntry], dict[str, dict[str, Path]]]:
    if not tasks_dir.is_dir():
        hint = BUILD_HINT.format(tasks=tasks_dir)
        raise MedsbenchError(f"no task files in {tasks_dir}: build them with `{hint}` (or pass --build-from RAW_DIR)")
    entries, files, skipped = resolve_tasks(selection, tasks_dir, validate=False)
    validate_selected({e.id: files[e.id] for e in entries})  # before any compute: file:index: field
    if skipped:
        log(f"[dim]skipping {len(skipped)} selected task(s) without files: {', '.join(skipped)}[/dim]", soft_wrap=True)
    return entries, files


def _recorded_tasks(prev: RunManifest) -> tuple[list[CatalogEntry], dict[str, dict[str, Path]]]:
    """The catalog entries and the files a run recorded (a resume never re-scans the workspace)."""
    from medsbench.tasks.catalog import catalog
    from medsbench.tasks.workspace import (
        workspace_entry,  # tasks outside the catalog, from their file
    )

    cat = catalog()
    files = {tid: {split: Path(f.path) for split, f in t.files.items()} for tid, t in prev.tasks.items()}
    entries = []
    for tid in prev.tasks:
        entry = cat.tasks.get(tid) or workspace_entry(tid, files[tid])
        if entry is None:
            raise MedsbenchError(f"the run's task {tid} is neither in the catalog nor a workspace task file")
        entries.append(entry)
    return entries, files


def _rescore(run_dir: Path, manifest: RunManifest, settings: Settings, log: Callable[[str], None],
             scorer: Scorer | None) -> RunResult:
    """Every prediction is there (a run killed while scoring): score again, no model needed."""
    rows = read_predictions(run_dir / "predictions.jsonl", format="jsonl")
    result = RunResult(run_dir, manifest, limit=settings.limit, rescored_only=True)
    for r in rows:
        st = result.per_task.setdefault(
            r.task_id, {"category": r.category, "n": 0, "cached": 0, "failed": 0, "truncated": 0, "seconds": 0.0}
        )
        st["n"] += 1
        st["cached"] += 1
        st["truncated"] += int(r.truncated)
    result.n_items = result.n_cached = len(rows)
    result.n_truncated = sum(r.truncated for r in rows)
    log(f"all {len(rows)} predictions are in {run_dir}: scoring again without the model")
    _finish(result, run_dir / "predictions.jsonl", log, scorer)
    return result


def _finish(result: RunResult, pred_path: Path, log: Callable[[str], None], scorer: Scorer | None) -> None:
    """status "scoring" -> results.json -> status "finished" (or "failed" when items failed).

    Without a scorer (``medsbench.runs`` alone does not score) the run ends with its predictions.
    """
    manifest, run_dir = result.manifest, result.run_dir
    end_status: Literal["failed", "finished"] = "failed" if result.n_failed else "finished"
    if scorer is not None:
        manifest.status = "scoring"
        manifest.save(run_dir)
        result.results = score(pred_path, run_dir, log, scorer)
        if result.results is None:  # left at "scoring": --resume scores again
            return
    manifest.status = end_status
    manifest.finished = now()
    manifest.save(run_dir)


def _new_manifest(
    plans: list[TaskPlan],
    prev: RunManifest | None,
    settings: Settings,
    spec_name: str,
    identity: dict[str, Any],
    ws: Path,
    cache_path: Path,
    deviations: list[str],
) -> RunManifest:
    """The run's manifest; on resume the plan must match the recorded one (definitions, item counts)."""
    task_records = {
        p.entry.id: ManifestTask(
            category=p.entry.category,
            language=p.entry.language,
            definition_sha256=hashlib.sha256(p.definition.encode()).hexdigest(),
            n_total=p.n_total,
            n=len(p.items),
            files={s: TaskFile(**f) for s, f in file_hashes({k: v.resolve() for k, v in p.files.items()}).items()},
            source=task_source(p.files["test"]),
        )
        for p in plans
    }
    if prev is not None:
        for tid, t in task_records.items():
            if t.definition_sha256 != prev.tasks[tid].definition_sha256 or t.n != prev.tasks[tid].n:
                raise MedsbenchError(f"the prompt of {tid} changed since the run started (definition or item count): start a new run")
    manifest = RunManifest(
        model=spec_name,
        backend=redact_identity(identity),
        protocol=settings.protocol,
        tasks=task_records,
        args=settings.args(),
        generation={
            "do_sample": False, "greedy": True, "max_new_tokens": {p.entry.id: p.max_new_tokens for p in plans},
            "stop": {p.entry.id: list(p.items[0].stop) for p in plans if p.items and p.items[0].stop},
        },
        prompt_template_sha256=prompt_template_sha256(settings.prompt_style),
        chat_template_sha256=identity.get("chat_template_sha256"),
        seed=settings.seed,
        workspace=str(ws.resolve()),
        cache=str(cache_path.resolve()),
        deviations=deviations,
        command=[redact_text(a) for a in sys.argv],  # a spec on the command line may carry credentials
    )
    if prev is not None:
        # Rows journaled before a kill were generated with the recorded settings: a plan that now differs
        # (e.g. another medsbench version's stop strings or token limits) would mix two settings in one run.
        for key in ("max_new_tokens", "stop"):
            old, new = prev.generation.get(key) or {}, manifest.generation.get(key) or {}
            moved = sorted(t for t in set(old) | set(new) if old.get(t) != new.get(t))
            if moved:
                raise MedsbenchError(
                    f"the generation settings ({key.replace('_', ' ')}) of {', '.join(moved)} changed since the run "
                    "started (another medsbench version or protocol table): start a new run"
                )
    if prev is not None:  # the run's identity stays the one it started with
        manifest.started = prev.started
        manifest.command = prev.command
    return manifest


def _run_locked(
    model: str | Backend,
    settings: Settings,
    *,
    prev: RunManifest | None,
    ws: Path,
    run_dir: Path,
    cache_path: Path,
    spec_name: str,
    deviations: list[str],
    batch_size: int | str | None,
    selected: tuple[list[CatalogEntry], dict[str, dict[str, Path]]] | None,
    progress: bool | str,
    console: Any,
    scorer: Scorer | None,
    heartbeat: float,
) -> RunResult:
    log = console.print
    if prev is not None:  # the recorded files, never a re-scan of the workspace
        entries, files = _recorded_tasks(prev)
        validate_selected(files)
    else:
        assert selected is not None  # resolved and validated before the run folder was touched
        entries, files = selected
    defs = load_definitions(settings.definitions)

    if isinstance(model, str):
        from medsbench.models import load_backend

        opts = dict(settings.backend_options)
        if batch_size is not None:
            opts["batch_size"] = batch_size
        log(f"loading model {spec_name} ...")
        backend = load_backend(model, **opts)
    else:
        backend = model
    identity = backend.identity()
    shown_identity = redact_identity(identity)
    if prev is not None and prev.backend != shown_identity:
        changed = sorted(k for k in set(prev.backend) | set(shown_identity) if prev.backend.get(k) != shown_identity.get(k))
        raise MedsbenchError(f"the model changed since the run started ({', '.join(changed)} differ): start a new run")

    mode = _progress_mode(progress, console)
    if mode != "off":
        log(f"planning prompts of {len(entries)} task(s) ...", markup=False, highlight=False, soft_wrap=True)
    plans: list[TaskPlan] = []
    for entry in entries:
        plan = plan_task(
            entry, files[entry.id], backend, limit=settings.limit, shots=settings.shots, seed=settings.seed,
            max_new_tokens=settings.max_new_tokens, style=settings.prompt_style, definitions=defs,
            protocol=settings.protocol,
        )
        if settings.shard:
            index, count = parse_shard(settings.shard) or (0, 1)
            plan.items = [item for pos, item in enumerate(plan.items) if pos % count == index]
        for item in plan.items:
            item.key = cache_key(identity, item.text, generation_config(item.max_new_tokens, item.stop))
        plans.append(plan)

    manifest = _new_manifest(plans, prev, settings, spec_name, identity, ws, cache_path, deviations)
    pred_path = run_dir / "predictions.jsonl"
    reuse = _read_journal(pred_path) if prev is not None else {}
    manifest.save(run_dir)
    store = ResultCache(cache_path)
    result = RunResult(run_dir, manifest, limit=settings.limit)
    done: dict[tuple[str, int], PredictionRow] = {}  # (task id, position) -> prediction row
    interrupted = False
    try:
        hits = store.get_many([i.key for p in plans for i in p.items if i.error is None])
        to_generate = sum(1 for p in plans for i in p.items if i.error is None and i.key not in hits
                          and (i.task_id, i.instance.id, i.text) not in reuse)
        total = sum(len(p.items) for p in plans)
        unsendable = sum(1 for p in plans for i in p.items if i.error is not None)
        bar = progress_bar(console) if mode == "bar" else contextlib.nullcontext()
        with open(pred_path, "wb") as fh, bar as live:
            tracker = RunProgress(
                total, to_generate, interval=heartbeat, bar=live if mode == "bar" else None,
                emit=(lambda s: log(s, markup=False, highlight=False, soft_wrap=True)) if mode == "log" else None,
            )
            too_long = f", {unsendable} too long to send" if unsendable else ""
            tracker.say(f"eval: {total} items in {len(plans)} task(s), {total - to_generate - unsendable} already "
                        f"answered, {to_generate} to generate{too_long}")
            with Heartbeat(tracker), warnings.catch_warnings():
                # transformers 5 warns on every generate() with a KV cache; once per batch it breaks the bar
                warnings.filterwarnings("ignore", message=r".*past_key_values.*deprecated", category=FutureWarning)
                for plan in plans:
                    _run_task(plan, backend, store, fh, tracker, done, result, hits, reuse)
            tracker.say(f"eval: {tracker.done}/{total} items done ({tracker.failed} failed)")
    except BaseException as exc:
        interrupted = True
        if not isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        store.close()
        rows = [done[(p.entry.id, i)] for p in plans for i in range(len(p.items)) if (p.entry.id, i) in done]
        write_predictions(pred_path, rows)
        write_official_csv(run_dir / "predictions.csv", rows)
        manifest.counts = {
            "items": result.n_items, "cached": result.n_cached, "generated": result.n_generated,
            "failed": result.n_failed, "truncated": result.n_truncated, "written": len(rows),
        }
        if interrupted:
            manifest.status = "interrupted"
            manifest.finished = now()
        manifest.save(run_dir)
    if interrupted:
        log(
            f"[yellow]interrupted: {len(rows)} of {sum(len(p.items) for p in plans)} items saved. "
            f"Resume with: medsbench eval --resume --out {run_dir}[/yellow]",
            soft_wrap=True,
        )
        raise KeyboardInterrupt
    if mode != "off" and scorer is not None and rows:
        log(f"scoring {len(rows)} predictions ...", markup=False, highlight=False, soft_wrap=True)
    _finish(result, pred_path, log, scorer if rows else None)
    return result


def _progress_mode(progress: bool | str, console: Any) -> str:
    if progress is False or progress == "off":
        return "off"
    if progress in (True, "auto"):
        return "bar" if getattr(console, "is_terminal", False) else "log"
    if progress not in ("bar", "log"):
        raise MedsbenchError(f"unknown progress mode '{progress}' (auto, bar, log, off)")
    return str(progress)


def _record_failure(result: RunResult, stats: dict[str, Any], tid: str, error: str | None) -> None:
    stats["failed"] += 1
    result.n_failed += 1
    seen = result.failures.setdefault(tid, [])
    message = redact_text(error or "unknown error")
    if len(message) > 300:
        message = message[:297] + "..."
    if message not in seen and len(seen) < MAX_ERRORS_SHOWN:
        seen.append(message)


def _run_task(
    plan: TaskPlan,
    backend: Backend,
    store: ResultCache,
    fh: Any,
    tracker: RunProgress,
    done: dict[tuple[str, int], PredictionRow],
    result: RunResult,
    hits: dict[str, Response],
    reuse: dict[tuple[str, str | None, str | None], PredictionRow],
) -> None:
    """Answer every item of one task: journal and cache hits first, then the backend; each result durable at once."""
    tid = plan.entry.id
    items = plan.items
    stats = result.per_task.setdefault(
        tid, {"category": plan.entry.category, "n": len(items), "cached": 0, "failed": 0, "truncated": 0, "seconds": 0.0}
    )
    tracker.start_task(f"{tid} {plan.entry.slug}")
    t_task = time.perf_counter()
    result.n_items += len(items)
    stats["truncated"] = sum(i.truncated for i in items)
    result.n_truncated += stats["truncated"]
    waiting: dict[str, list[int]] = {}  # cache key -> positions (identical prompts are generated once)
    answered = 0
    for pos, item in enumerate(items):
        hit = hits.get(item.key)
        old = reuse.get((tid, item.instance.id, item.text))
        if item.error is not None:  # cannot be sent at all: an explicit failure, never a model call
            _emit(tid, pos, prediction_row(item, Response(item.key, "", None, None, 0.0, item.error)), fh, done)
            _record_failure(result, stats, tid, item.error)
            tracker.advance(failed=True)
        elif old is not None and hit is None:  # answered before a kill, its cache row not committed elsewhere
            _emit(tid, pos, old.model_copy(update={"where": None}), fh, done)
            stats["cached"] += 1
            result.n_cached += 1
            answered += 1
        elif hit is not None:
            _emit(tid, pos, prediction_row(item, hit), fh, done)
            stats["cached"] += 1
            result.n_cached += 1
            answered += 1
        else:
            waiting.setdefault(item.key, []).append(pos)
    fh.flush()
    if answered:
        tracker.advance(answered)
    requests = []
    for key, positions in waiting.items():
        item = items[positions[0]]
        requests.append(Request(id=key, messages=item.messages, prompt=item.prompt, max_new_tokens=item.max_new_tokens,
                                stop=tuple(item.stop)))
    t0 = time.perf_counter()
    if requests:
        tracker.generating()
    for resp in backend.iter_generate(requests):
        store.put_many([(resp.id, resp)])  # durable before anything else (errors are not cached)
        positions = waiting[resp.id]
        for pos in positions:
            _emit(tid, pos, prediction_row(items[pos], resp), fh, done)
            if resp.error is not None:
                _record_failure(result, stats, tid, resp.error)
            else:
                result.n_generated += 1
        fh.flush()
        tracker.advance(len(positions), generated=True, failed=resp.error is not None)
    stats["seconds"] = time.perf_counter() - t0
    failed = f", {stats['failed']} failed" if stats["failed"] else ""
    tracker.say(f"{tid}: {len(items)} items done{failed} in {fmt_duration(time.perf_counter() - t_task)}")


def _emit(tid: str, pos: int, row: PredictionRow, fh: Any, done: dict[tuple[str, int], PredictionRow]) -> None:
    done[(tid, pos)] = row
    fh.write(encode_prediction(row))
