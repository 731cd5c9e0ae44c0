"""``execute_run``: plan -> cache lookup -> backend -> append predictions -> score.

A run is defined by an :class:`~medsbench.records.config.EvalConfig` (what it measures) and lives in
:class:`RunPlaces` (its run folder, workspace and result cache); :func:`prepare` builds both from the
flags a user gave, once, for a new run or a ``--resume``.

Predictions are appended (and the cache committed) as each backend chunk finishes; at the end
``predictions.jsonl`` is rewritten in plan order, so an interrupted-and-resumed run ends with
exactly the file an uninterrupted run writes (timings of cached items come from the cache).

Before any compute is spent the runner checks, in this order: the protocol and the model spec, the
selected task files (the task-file rules), that the run folder and the cache folder are writable,
the run folder lock (one writer per run folder), that the folder holds no run of another
configuration (a new run) or, on resume, the recorded task files' sha256. A failed item is a row
with ``error`` set and no output: it is missing from the scores and re-sent by ``--resume``
(errors are never cached).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medsbench.errors import MedsbenchError
from medsbench.fileio import ensure_writable, sha256_text
from medsbench.models import check_spec, load_backend
from medsbench.models.base import Backend, LoglikResponse, Request, Response, can_score_loglik
from medsbench.prompts.protocols import get_protocol, run_deviations
from medsbench.records.config import EvalConfig
from medsbench.records.folder import Journal, JournalKey, RunFolder, items_digest
from medsbench.records.manifest import ManifestTask, RunManifest, TaskFile, now
from medsbench.records.predictions import PredictionRow
from medsbench.records.results import Results
from medsbench.redact import redact, redact_text
from medsbench.reporter import LogReporter, Reporter
from medsbench.runs.cache import ResultCache, cache_key
from medsbench.runs.checks import verify_task_files
from medsbench.runs.loglik import ChoicesFn, ItemOptions, loglik_config, loglik_request, option_scores
from medsbench.runs.plan import (
    Item,
    TaskPlan,
    file_hashes,
    plan_task,
    prompt_template_sha256,
    recorded_tasks,
    select_tasks,
)
from medsbench.runs.progress import HEARTBEAT_SECONDS, Heartbeat, RunProgress, fmt_duration
from medsbench.tasks.workspace import load_definitions, task_source
from medsbench.workspace import Workspace

MAX_ERRORS_SHOWN = 3  # distinct error messages kept per task for the summary

#: The metrics stage a run hands its rows to (medsbench.pipeline passes medsbench.metrics' scorer).
ScoreFn = Callable[[list[PredictionRow], RunManifest, RunFolder], Results]


@dataclass(frozen=True)
class RunPlaces:
    """Where a run reads and writes; not part of what it measures."""

    folder: RunFolder
    workspace: Workspace
    cache: Path

    @classmethod
    def for_new(cls, config: EvalConfig, *, out: str | Path | None = None, workspace: str | Path | None = None,
                cache: str | Path | None = None) -> RunPlaces:
        ws = Workspace.at(workspace)
        folder = RunFolder(out) if out is not None else RunFolder(ws.run_dir(config.default_run_name()))
        return cls(folder, ws, Path(cache) if cache is not None else ws.cache)

    @classmethod
    def recorded(cls, folder: RunFolder, manifest: RunManifest, *, workspace: str | Path | None = None,
                 cache: str | Path | None = None) -> RunPlaces:
        """The places a run recorded; a ``--workspace``/``--cache`` given with ``--resume`` must agree."""
        for flag, given, saved in (("--workspace", workspace, manifest.workspace), ("--cache", cache, manifest.cache)):
            if given is not None and saved is not None and Path(given).resolve() != Path(saved):
                raise MedsbenchError(f"--resume takes its places from {folder.manifest_path}: {flag} {given} conflicts "
                                     f"with the run's {saved} (drop the flag)")
        ws = Workspace.at(manifest.workspace or workspace)
        return cls(folder, ws, Path(manifest.cache) if manifest.cache else ws.cache)


@dataclass
class RunOptions:
    """How a run behaves (not what it measures)."""

    resume: bool = False
    overwrite: bool = False
    progress: Literal["auto", "bar", "log", "off"] = "auto"
    heartbeat: float = HEARTBEAT_SECONDS
    reporter: Reporter = field(default_factory=LogReporter)
    backend: Backend | None = None  # a backend already loaded (``config.model`` names it in the manifest)
    scorer: ScoreFn | None = None
    choices: ChoicesFn | None = None  # --scoring loglik: each task's options (medsbench.pipeline: the metrics stage's)


@dataclass
class RunResult:
    folder: RunFolder
    manifest: RunManifest
    n_items: int = 0
    n_cached: int = 0
    n_generated: int = 0
    n_failed: int = 0
    n_truncated: int = 0
    results: Results | None = None  # None: not scored
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # task id -> first distinct errors (redacted)
    rescored_only: bool = False  # resume found every prediction: scored again, no model loaded

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    @property
    def status(self) -> str:
        return self.manifest.status

    @property
    def limit(self) -> int | float | None:
        """A run limited to the first N items of each task is a sample."""
        return self.manifest.config.limit if self.manifest.config is not None else None


def prepare(given: dict[str, Any], *, out: str | Path | None = None, workspace: str | Path | None = None,
            cache: str | Path | None = None, resume: bool = False) -> tuple[EvalConfig, RunPlaces]:
    """The run's config and places from the flags given (``None`` = not given), built once.

    A new run: ``EvalConfig.from_flags``. ``--resume``: the config recorded in the run folder's
    manifest, with every flag given checked against it (a differing one is refused, naming it).
    """
    if not resume:
        config = EvalConfig.from_flags(**given)
        return config, RunPlaces.for_new(config, out=out, workspace=workspace, cache=cache)
    if out is None:
        raise MedsbenchError("--resume needs --out RUN_FOLDER")
    folder = RunFolder(out)
    if not folder.is_run():
        raise MedsbenchError(f"nothing to resume: no manifest in {folder.path}")
    manifest = folder.manifest()
    if manifest.config is None:
        raise MedsbenchError("a submission, not an evaluation run: nothing to resume", where=str(folder.path))
    config = manifest.config.resumed_with(folder.manifest_path, **given)
    return config, RunPlaces.recorded(folder, manifest, workspace=workspace, cache=cache)


def generation_config(max_new_tokens: int, stop: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The generation settings hashed into an item's cache key (besides backend identity and prompt).

    Stop strings enter only when there are some, so keys of runs without them stay as they were.
    """
    config: dict[str, Any] = {"max_new_tokens": max_new_tokens, "greedy": True}
    if stop:
        config["stop"] = list(stop)
    return config


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


# --------------------------------------------------------------------------- the run


def execute_run(config: EvalConfig, places: RunPlaces, options: RunOptions | None = None) -> RunResult:
    """Evaluate ``config.model`` (or ``options.backend``) on ``config.tasks``; returns the run summary.

    Everything checkable is checked before the model loads or the folder is touched (protocol, spec,
    task files, writable places); then, under the folder's lock, a new run claims the folder (a run of
    another configuration there is refused) and a resume re-verifies its task files.
    """
    options = options or RunOptions()
    deviations = list(get_protocol(config.protocol).deviations)
    if options.backend is None:
        check_spec(config.model)
    selected = None if options.resume else select_tasks(config.tasks, places.workspace.tasks, options.reporter)
    folder = places.folder
    ensure_writable(folder.path, "run folder")
    ensure_writable(places.cache.parent, "cache folder")
    with folder.lock():
        folder.clean_stale_tmp()
        prev = None
        if options.resume:
            prev = folder.manifest()  # re-read under the lock
            verify_task_files(prev)
            if _all_predictions_present(folder, prev):
                return _rescore(folder, prev, options)
        else:
            folder.claim(config, overwrite=options.overwrite)
        return _Run(config, places, options, prev, deviations).execute(selected)


def _all_predictions_present(folder: RunFolder, manifest: RunManifest) -> bool:
    """True when predictions.jsonl holds every planned item, none failed (only scoring is left)."""
    if manifest.status not in ("scoring", "finished") or not folder.has_predictions():
        return False
    try:
        rows = folder.predictions()
    except MedsbenchError:
        return False
    return not any(r.failed or r.output is None for r in rows)


def _rescore(folder: RunFolder, manifest: RunManifest, options: RunOptions) -> RunResult:
    """Every prediction is there (a run killed while scoring): score again, no model needed."""
    rows = folder.predictions()
    result = RunResult(folder, manifest, rescored_only=True)
    for r in rows:
        st = result.per_task.setdefault(
            r.task_id, {"category": r.category, "n": 0, "cached": 0, "failed": 0, "truncated": 0, "seconds": 0.0}
        )
        st["n"] += 1
        st["cached"] += 1
        st["truncated"] += int(r.truncated)
    result.n_items = result.n_cached = len(rows)
    result.n_truncated = sum(r.truncated for r in rows)
    options.reporter.message(f"all {len(rows)} predictions are in {folder.path}: scoring again without the model")
    finish_run(result, rows, options)
    return result


def finish_run(result: RunResult, rows: list[PredictionRow], options: RunOptions) -> None:
    """status "scoring" -> results.json -> status "finished" (or "failed" when items failed).

    Without a scorer (``medsbench.runs`` alone does not score) the run ends with its predictions.
    """
    manifest, folder = result.manifest, result.folder
    end_status: Literal["failed", "finished"] = "failed" if result.n_failed else "finished"
    if options.scorer is not None and rows:
        manifest.status = "scoring"
        folder.save_manifest(manifest)
        try:
            result.results = options.scorer(rows, manifest, folder)
        except MedsbenchError as exc:  # the predictions stay; `medsbench eval --resume` re-scores after a fix
            options.reporter.message(f"warning: scoring failed, results.json not written: {exc}", "warning")
            return  # left at "scoring"
        folder.save_results(result.results)
    manifest.status = end_status
    manifest.finished = now()
    folder.save_manifest(manifest)


class _Run:
    """One locked execution of a run: load, plan, record, answer, finish."""

    def __init__(self, config: EvalConfig, places: RunPlaces, options: RunOptions, prev: RunManifest | None,
                 deviations: list[str]):
        self.config, self.places, self.options, self.prev, self.deviations = config, places, options, prev, deviations
        self.say = options.reporter.message

    def execute(self, selected: tuple[list[Any], dict[str, dict[str, Path]]] | None) -> RunResult:
        entries, files = recorded_tasks(self.prev) if self.prev is not None else selected  # type: ignore[misc]
        options = self._options(entries, files)  # a task without closed answers is refused before the model loads
        backend = self._backend()
        if options is not None and not can_score_loglik(backend):
            raise MedsbenchError(f"--scoring loglik: the {getattr(backend, 'name', 'given')} backend cannot score "
                                 "log-likelihoods (use --scoring generate, or an hf, vllm or default model)")
        identity = backend.identity()
        self._check_identity(identity)
        self.deviations = self.deviations + run_deviations(self.config.protocol, identity, self.config.max_new_tokens)
        plans = self._plan(entries, files, backend, identity, options)
        manifest = self._manifest(plans, identity)
        folder = self.places.folder
        reuse = folder.journal() if self.prev is not None else {}
        folder.save_manifest(manifest)
        result = RunResult(folder, manifest)
        rows = self._answer(plans, backend, result, reuse)
        finish_run(result, rows, self.options)
        return result

    # -- model ------------------------------------------------------------
    def _backend(self) -> Backend:
        if self.options.backend is not None:
            return self.options.backend
        self.say(f"loading model {self.config.model.redacted()} ...")
        return load_backend(self.config.model)

    def _check_identity(self, identity: dict[str, Any]) -> None:
        if self.prev is None:
            return
        shown = redact(identity)
        if self.prev.backend != shown:
            changed = sorted(k for k in set(self.prev.backend) | set(shown) if self.prev.backend.get(k) != shown.get(k))
            raise MedsbenchError(f"the model changed since the run started ({', '.join(changed)} differ): start a new run")

    # -- plan -------------------------------------------------------------
    def _options(self, entries: list[Any], files: dict[str, dict[str, Path]]) -> dict[str, ItemOptions] | None:
        """--scoring loglik: each task's options from the metrics stage (None: a generative run)."""
        if self.config.scoring != "loglik":
            return None
        if self.options.choices is None:
            raise MedsbenchError("--scoring loglik needs the options of each task: run it through medsbench.pipeline "
                                 "(`medsbench eval`), which passes the metrics stage's")
        return {e.id: self.options.choices(e.id, e.category, files[e.id]["test"]) for e in entries}

    def _plan(self, entries: list[Any], files: dict[str, dict[str, Path]], backend: Backend,
              identity: dict[str, Any], options: dict[str, ItemOptions] | None = None) -> list[TaskPlan]:
        if self.options.progress != "off":
            self.say(f"planning prompts of {len(entries)} task(s) ...")
        defs = load_definitions(self.config.definitions)
        shard = self.config.shard_index
        plans = []
        for entry in entries:
            plan = plan_task(entry, files[entry.id], backend, self.config, definitions=defs)
            if shard is not None:
                index, count = shard
                plan.items = [item for pos, item in enumerate(plan.items) if pos % count == index - 1]
            for item in plan.items:
                item.key = cache_key(identity, item.text, generation_config(item.max_new_tokens, item.stop))
                if options is not None:
                    _attach_options(item, options[entry.id], identity)
            plans.append(plan)
        return plans

    def _manifest(self, plans: list[TaskPlan], identity: dict[str, Any]) -> RunManifest:
        """The run's manifest; on resume the plan must match the recorded one (definitions, items, limits)."""
        tasks = {p.entry.id: _task_record(p) for p in plans}
        manifest = RunManifest(
            config=self.config,
            backend=redact(identity),
            tasks=tasks,
            generation={
                "do_sample": False, "greedy": True, "max_new_tokens": {p.entry.id: p.max_new_tokens for p in plans},
                "stop": {p.entry.id: list(p.items[0].stop) for p in plans if p.items and p.items[0].stop},
                **_loglik_generation(plans),
            },
            prompt_template_sha256=prompt_template_sha256(self.config.prompt_style),
            chat_template_sha256=identity.get("chat_template_sha256"),
            workspace=str(self.places.workspace.root.resolve()),
            cache=str(self.places.cache.resolve()),
            deviations=self.deviations,
            command=[redact_text(a) for a in sys.argv],  # a spec on the command line may carry credentials
        )
        if self.prev is not None:
            _check_same_plan(self.prev, manifest)
            manifest.started, manifest.command = self.prev.started, self.prev.command  # the run's identity stays
        return manifest

    # -- answer -----------------------------------------------------------
    def _answer(self, plans: list[TaskPlan], backend: Backend, result: RunResult,
                reuse: dict[JournalKey, PredictionRow]) -> list[PredictionRow]:
        folder, manifest = self.places.folder, result.manifest
        store = ResultCache(self.places.cache)
        done: dict[tuple[str, int], PredictionRow] = {}  # (task id, position) -> prediction row
        interrupted = False
        try:
            keys = [i.key for p in plans for i in p.items if i.error is None]
            loglik = self.config.scoring == "loglik"
            hits: dict[str, Any] = store.get_loglik_many(keys) if loglik else store.get_many(keys)
            with folder.journal_writer() as journal, self._progress(plans, hits, reuse) as tracker:
                kind = _LoglikAnswerer if loglik else _Answerer
                kind(backend, store, journal, tracker, done, result, hits, reuse).run(plans)
                tracker.say(f"eval: {tracker.done}/{tracker.total} items done ({tracker.failed} failed)")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            store.close()
            rows = [done[(p.entry.id, i)] for p in plans for i in range(len(p.items)) if (p.entry.id, i) in done]
            folder.write_predictions(rows)
            manifest.counts = {
                "items": result.n_items, "cached": result.n_cached, "generated": result.n_generated,
                "failed": result.n_failed, "truncated": result.n_truncated, "written": len(rows),
            }
            if interrupted:
                manifest.status = "interrupted"
                manifest.finished = now()
            folder.save_manifest(manifest)
        if interrupted:
            total = sum(len(p.items) for p in plans)
            self.say(f"interrupted: {len(rows)} of {total} items saved. Resume with: medsbench eval --resume --out "
                     f"{folder.path}", "warning")
            raise KeyboardInterrupt
        if self.options.progress != "off" and self.options.scorer is not None and rows:
            self.say(f"scoring {len(rows)} predictions ...")
        return rows

    @contextlib.contextmanager
    def _progress(self, plans: list[TaskPlan], hits: dict[str, Any],
                  reuse: dict[JournalKey, PredictionRow]) -> Iterator[RunProgress]:
        """The run's progress: a live bar (a terminal), heartbeat lines (a log), or nothing."""
        items = [i for p in plans for i in p.items]
        total = len(items)
        to_generate = sum(1 for i in items if i.error is None and i.key not in hits
                          and (i.task_id, i.instance.id, i.text) not in reuse)
        unsendable = sum(1 for i in items if i.error is not None)
        mode, reporter = self.options.progress, self.options.reporter
        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(reporter.bar(total)) if mode in ("auto", "bar") else None
            emit = reporter.message if mode == "log" or (mode == "auto" and bar is None) else None
            tracker = RunProgress(total, to_generate, interval=self.options.heartbeat, bar=bar, emit=emit)
            tracker.say(f"eval: {total} items in {len(plans)} task(s), {total - to_generate - unsendable} already "
                        f"answered, {to_generate} to generate" + (f", {unsendable} too long to send" if unsendable else ""))
            stack.enter_context(Heartbeat(tracker))
            stack.enter_context(warnings.catch_warnings())
            # transformers 5 warns on every generate() with a KV cache; once per batch it breaks the bar
            warnings.filterwarnings("ignore", message=r".*past_key_values.*deprecated", category=FutureWarning)
            yield tracker


def _task_record(plan: TaskPlan) -> ManifestTask:
    return ManifestTask(
        category=plan.entry.category,
        language=plan.entry.language,
        definition_sha256=sha256_text(plan.definition),
        n_total=plan.n_total,
        n=len(plan.items),
        items_sha256=items_digest(i.instance.id for i in plan.items),
        files={s: TaskFile(**f) for s, f in file_hashes({k: v.resolve() for k, v in plan.files.items()}).items()},
        source=task_source(plan.files["test"]),
    )


def _check_same_plan(prev: RunManifest, manifest: RunManifest) -> None:
    """Rows journaled before a kill were made with the recorded plan: a plan that now differs (another
    medsbench version's prompts, stop strings or token limits) would mix two settings in one run."""
    for tid, t in manifest.tasks.items():
        old = prev.tasks[tid]
        if t.definition_sha256 != old.definition_sha256 or t.n != old.n or (
                old.items_sha256 is not None and t.items_sha256 != old.items_sha256):
            raise MedsbenchError(f"the prompt of {tid} changed since the run started (definition or items): start a new run")
    for key in ("max_new_tokens", "stop"):
        was, now_ = prev.generation.get(key) or {}, manifest.generation.get(key) or {}
        moved = sorted(t for t in set(was) | set(now_) if was.get(t) != now_.get(t))
        if moved:
            raise MedsbenchError(
                f"the generation settings ({key.replace('_', ' ')}) of {', '.join(moved)} changed since the run "
                "started (another medsbench version or protocol table): start a new run"
            )


class _Answerer:
    """Answers every planned item: journal and cache hits first, then one request stream over all tasks
    (a backend batches across task boundaries: vLLM keeps its queue full, hf sorts every prompt by
    length); each result is durable at once."""

    def __init__(self, backend: Backend, store: ResultCache, journal: Journal, tracker: RunProgress,
                 done: dict[tuple[str, int], PredictionRow], result: RunResult, hits: dict[str, Any],
                 reuse: dict[JournalKey, PredictionRow]):
        self.backend, self.store, self.journal, self.tracker = backend, store, journal, tracker
        self.done, self.result, self.hits, self.reuse = done, result, hits, reuse
        self.t0 = time.perf_counter()

    def run(self, plans: list[TaskPlan]) -> None:
        waiting: dict[str, list[tuple[int, int]]] = {}  # cache key -> (plan, position): identical prompts asked once
        left: dict[int, int] = {}
        for k, plan in enumerate(plans):
            self.tracker.start_task(f"{plan.entry.id} {plan.entry.slug}")
            own = self._known(plan)
            for key, positions in own.items():
                waiting.setdefault(key, []).extend((k, pos) for pos in positions)
            left[k] = sum(len(p) for p in own.values())
            if left[k] == 0:
                self._task_done(plan)
        requests = [self._request(key, plans[places[0][0]].items[places[0][1]]) for key, places in waiting.items()]
        if requests:
            self.tracker.generating()
        last = time.perf_counter()
        for resp in self._responses(requests):
            now = time.perf_counter()
            for n, (k, pos) in enumerate(waiting[resp.id]):
                plan = plans[k]
                stats = self.result.per_task[plan.entry.id]
                stats["seconds"] += (now - last) if n == 0 else 0.0  # the wait for this answer, on its task
                self._emit(plan.entry.id, pos, self._row(plan.items[pos], resp))
                if resp.error is not None:
                    self._failure(stats, plan.entry.id, resp.error)
                else:
                    self.result.n_generated += 1
                left[k] -= 1
                if left[k] == 0:
                    self._task_done(plan)
            last = now
            self.journal.flush()
            entry = plans[waiting[resp.id][0][0]].entry
            self.tracker.start_task(f"{entry.id} {entry.slug}")
            self.tracker.advance(len(waiting[resp.id]), generated=True, failed=resp.error is not None)

    def _request(self, key: str, item: Item) -> Any:
        return Request(id=key, messages=item.messages, prompt=item.prompt, max_new_tokens=item.max_new_tokens,
                       stop=tuple(item.stop))

    def _responses(self, requests: list[Any]) -> Iterator[Any]:
        for resp in self.backend.iter_generate(requests):
            self.store.put_many([(resp.id, resp)])  # durable before anything else (errors are not cached)
            yield resp

    def _row(self, item: Item, resp: Any) -> PredictionRow:
        return prediction_row(item, resp)

    def _task_done(self, plan: TaskPlan) -> None:
        stats = self.result.per_task[plan.entry.id]
        failed = f", {stats['failed']} failed" if stats["failed"] else ""
        self.tracker.say(f"{plan.entry.id}: {len(plan.items)} items done{failed} in "
                         f"{fmt_duration(time.perf_counter() - self.t0)}")

    def _known(self, plan: TaskPlan) -> dict[str, list[int]]:
        """Emit unsendable items, journal rows and cache hits of one task; returns cache key -> positions
        still to ask."""
        tid, items = plan.entry.id, plan.items
        stats = self.result.per_task.setdefault(
            tid, {"category": plan.entry.category, "n": len(items), "cached": 0, "failed": 0, "truncated": 0, "seconds": 0.0}
        )
        self.result.n_items += len(items)
        stats["truncated"] = sum(i.truncated for i in items)
        self.result.n_truncated += stats["truncated"]
        waiting: dict[str, list[int]] = {}
        answered = 0
        for pos, item in enumerate(items):
            hit = self.hits.get(item.key)
            old = self.reuse.get((tid, item.instance.id, item.text))
            if item.error is not None:  # cannot be sent at all: an explicit failure, never a model call
                self._emit(tid, pos, prediction_row(item, Response(item.key, "", None, None, 0.0, item.error)))
                self._failure(stats, tid, item.error)
                self.tracker.advance(failed=True)
            elif old is not None and hit is None:  # answered before a kill, its cache row not committed elsewhere
                self._emit(tid, pos, old.model_copy(update={"where": None}))
                answered += 1
            elif hit is not None:
                self._emit(tid, pos, self._row(item, hit))
                answered += 1
            else:
                waiting.setdefault(item.key, []).append(pos)
        stats["cached"] += answered
        self.result.n_cached += answered
        self.journal.flush()
        if answered:
            self.tracker.advance(answered)
        return waiting

    def _emit(self, tid: str, pos: int, row: PredictionRow) -> None:
        self.done[(tid, pos)] = row
        self.journal.append(row)

    def _failure(self, stats: dict[str, Any], tid: str, error: str | None) -> None:
        stats["failed"] += 1
        self.result.n_failed += 1
        seen = self.result.failures.setdefault(tid, [])
        message = redact_text(error or "unknown error")
        if len(message) > 300:
            message = message[:297] + "..."
        if message not in seen and len(seen) < MAX_ERRORS_SHOWN:
            seen.append(message)


class _LoglikAnswerer(_Answerer):
    """``--scoring loglik``: every option of an item scored by the backend instead of a generation."""

    def _request(self, key: str, item: Item) -> Any:
        assert item.choices is not None
        return loglik_request(key, item.text, item.choices)

    def _responses(self, requests: list[Any]) -> Iterator[Any]:
        for start in range(0, len(requests), 8):  # each chunk durable before the next is scored
            for resp in self.backend.loglikelihood(requests[start : start + 8]):
                self.store.put_loglik_many([resp])
                yield resp

    def _row(self, item: Item, resp: Any) -> PredictionRow:
        return loglik_row(item, resp)


def loglik_row(item: Item, resp: LoglikResponse) -> PredictionRow:
    """The prediction row of a loglik item: the chosen option's answer as output, every option's score."""
    base = prediction_row(item, Response(resp.id, "", resp.prompt_tokens, None, resp.seconds, resp.error))
    if resp.error is not None or item.choices is None:
        return base
    scores, answer = option_scores(item.choices, resp)
    return base.model_copy(update={"output": answer, "loglik": scores, "output_tokens": None, "hit_cap": None})


def _attach_options(item: Item, options: ItemOptions, identity: dict[str, Any]) -> None:
    """An item's options and its loglik cache key; an item without options fails with the reason."""
    found = options(item.instance.input)
    if isinstance(found, str):
        item.error = item.error or f"--scoring loglik: {found}"
        return
    item.choices = found
    item.key = cache_key(identity, item.text, loglik_config(found))


def _loglik_generation(plans: list[TaskPlan]) -> dict[str, Any]:
    """The manifest's record of a loglik run: per task its lead-in, delimiter, variants and primary one."""
    found = {}
    for p in plans:
        c = next((i.choices for i in p.items if i.choices is not None), None)
        if c is not None:
            found[p.entry.id] = {"lead": c.lead, "delimiter": c.delimiter, "variants": list(c.variants),
                                 "primary": c.primary}
    return {"scoring": "loglik", "loglik": found} if found else {}
