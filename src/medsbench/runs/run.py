"""``run_eval``: plan -> cache lookup -> backend -> append predictions -> score.

Predictions are appended (and the cache committed) as each backend chunk
finishes; at the end ``predictions.jsonl`` is rewritten in plan order, so an
interrupted-and-resumed run ends with exactly the file an uninterrupted run
writes (timings of cached items come from the cache).
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import atomic_write, dumps, write_jsonl
from medsbench.models.base import Backend, Request, Response
from medsbench.runs.cache import ResultCache, cache_key
from medsbench.runs.manifest import RunManifest, now
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

RUN_ARGS = ("tasks", "limit", "shots", "seed", "max_new_tokens", "prompt_style", "definitions")


@dataclass
class RunResult:
    run_dir: Path
    manifest: RunManifest
    n_items: int = 0
    n_cached: int = 0
    n_generated: int = 0
    n_failed: int = 0
    n_truncated: int = 0
    results: dict[str, Any] | None = None
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)


def default_run_name(model: str) -> str:
    """``default`` -> default, ``hf:/m/tuned,dtype=..`` -> hf-tuned, ``openai:gpt-4o`` -> openai-gpt-4o."""
    kind, _, rest = model.partition(":")
    target = rest.split(",")[0].rstrip("/").rsplit("/", 1)[-1]
    name = f"{kind}-{target}" if target else kind
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "run"


def prediction_row(item: Item, resp: Response) -> dict[str, Any]:
    inst = item.instance
    return {
        "task_id": item.task_id,
        "id": inst.id,
        "category": item.category,
        "language": item.language,
        "input": inst.input,
        "output": resp.text if resp.error is None else "",
        "reference": inst.target,
        "references": list(inst.output),
        "prompt": item.text,
        "demo_ids": list(item.demo_ids),
        "prompt_tokens": resp.prompt_tokens,
        "output_tokens": resp.output_tokens,
        "seconds": round(resp.seconds, 4),
        "truncated": item.truncated,
        "error": resp.error,
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The official submission format: task_id,input,GT,output (input = the prompt sent, as officially)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["task_id", "input", "GT", "output"])
    for r in rows:
        writer.writerow([r["task_id"], r["prompt"], r["reference"], r["output"]])
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


def score(pred_path: Path, run_dir: Path, log: Callable[[str], None]) -> dict[str, Any] | None:
    """results.json via medsbench.metrics (issue B); skipped with a warning if it is not available."""
    try:
        from medsbench.metrics import score_predictions, write_results
    except ImportError:  # pragma: no cover - metrics ships with the package
        log("warning: medsbench.metrics is not available: results.json not written")
        return None
    try:
        results = score_predictions(pred_path)
    except MedsbenchError as exc:  # the predictions stay; `medsbench score` can be rerun after a fix
        log(f"[yellow]warning: scoring failed, results.json not written: {exc}[/yellow]")
        return None
    write_results(results, run_dir / "results.json")
    return results.model_dump(mode="json")


def run_eval(
    model: str | Backend | None,
    tasks: str = "available",
    *,
    workspace: str | Path = "medsbench-work",
    out: str | Path | None = None,
    limit: int | None = None,
    shots: int | None = None,
    seed: int = 0,
    batch_size: int | str | None = None,
    max_new_tokens: int | None = None,
    prompt_style: str = "official",
    definitions: str | Path | None = None,
    resume: bool = False,
    build_from: str | Path | None = None,
    cache: str | Path | None = None,
    backend_options: dict[str, Any] | None = None,
    progress: bool = True,
    console: Any = None,
    do_score: bool = True,
) -> RunResult:
    """Evaluate ``model`` (a spec such as ``default`` or a Backend) on ``tasks``; returns the run summary."""
    from rich.console import Console

    console = console or Console(stderr=True)
    log = console.print
    workspace = Path(workspace)
    if model is None and not resume:
        model = "default"
    tasks_dir = workspace / "tasks"
    if out is None and (resume or model is None):
        raise MedsbenchError("--resume needs --out RUN_FOLDER")
    spec = model if isinstance(model, str) or model is None else f"{getattr(model, 'name', 'backend')}:instance"
    run_dir = Path(out) if out is not None else workspace / "runs" / default_run_name(str(spec))

    if resume:
        if not (run_dir / "manifest.json").is_file():
            raise MedsbenchError(f"nothing to resume: no manifest.json in {run_dir}")
        prev = RunManifest.load(run_dir)
        saved = prev.args
        tasks = saved.get("tasks", tasks)
        limit = saved.get("limit") if limit is None else limit
        shots = saved.get("shots") if shots is None else shots
        seed = saved.get("seed", seed)
        max_new_tokens = saved.get("max_new_tokens") if max_new_tokens is None else max_new_tokens
        prompt_style = saved.get("prompt_style", prompt_style)
        definitions = saved.get("definitions") if definitions is None else definitions
        if model is None:
            model = prev.model

    if isinstance(model, str):
        from medsbench.models import check_spec

        check_spec(model, **(backend_options or {}))
    if build_from is not None:
        from medsbench.sources import convert_all

        def on_source(name: str, written: list[Path] | None, skipped: str | None) -> None:
            if written is not None:
                log(f"{name}: {len(written)} file(s)")
            elif skipped and not skipped.endswith("not present"):  # absent datasets are normal; say why others failed
                log(f"[dim]skip {name}: {skipped}[/dim]")

        report = convert_all(Path(build_from), tasks_dir, on_source)
        log(f"built {len(report.files)} task file(s) in {tasks_dir}")
    if not tasks_dir.is_dir():
        hint = BUILD_HINT.format(tasks=tasks_dir)
        raise MedsbenchError(f"no task files in {tasks_dir}: build them with `{hint}` (or pass --build-from RAW_DIR)")
    entries, files, skipped = resolve_tasks(tasks, tasks_dir)
    if skipped:
        log(f"[dim]skipping {len(skipped)} selected task(s) without files: {', '.join(skipped)}[/dim]")
    defs = load_definitions(definitions)

    if isinstance(model, str):
        from medsbench.models import load_backend

        opts = dict(backend_options or {})
        if batch_size is not None:
            opts["batch_size"] = batch_size
        log(f"loading model {model} ...")
        backend = load_backend(model, **opts)
    else:
        backend = model
    identity = backend.identity()
    spec = model if isinstance(model, str) else spec

    plans: list[TaskPlan] = []
    for entry in entries:
        plan = plan_task(
            entry, files[entry.id], backend, limit=limit, shots=shots, seed=seed,
            max_new_tokens=max_new_tokens, style=prompt_style, definitions=defs,
        )
        for item in plan.items:
            item.key = cache_key(identity, item.text, {"max_new_tokens": item.max_new_tokens, "greedy": True})
        plans.append(plan)

    manifest = RunManifest(
        model=spec,
        backend=identity,
        tasks={
            p.entry.id: {
                "category": p.entry.category,
                "language": p.entry.language,
                "definition_sha256": __import__("hashlib").sha256(p.definition.encode()).hexdigest(),
                "n_total": p.n_total,
                "n": len(p.items),
                "files": file_hashes(p.files),
            }
            for p in plans
        },
        args={
            "tasks": tasks, "limit": limit, "shots": shots, "seed": seed, "max_new_tokens": max_new_tokens,
            "prompt_style": prompt_style, "definitions": str(definitions) if definitions else None,
        },
        generation={"do_sample": False, "greedy": True, "max_new_tokens": {p.entry.id: p.max_new_tokens for p in plans}},
        prompt_template_sha256=prompt_template_sha256(prompt_style),
        chat_template_sha256=identity.get("chat_template_sha256"),
        seed=seed,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest.save(run_dir)
    store = ResultCache(cache or workspace / "cache.sqlite")
    pred_path = run_dir / "predictions.jsonl"
    result = RunResult(run_dir, manifest)
    done: dict[tuple[str, int], dict[str, Any]] = {}  # (task id, position) -> prediction row
    interrupted = False
    try:
        with open(pred_path, "wb") as fh, _progress(console, progress) as bar:
            for plan in plans:
                _run_task(plan, backend, store, fh, bar, done, result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        store.close()

    rows = [done[(p.entry.id, i)] for p in plans for i in range(len(p.items)) if (p.entry.id, i) in done]
    write_jsonl(pred_path, rows)
    write_csv(run_dir / "predictions.csv", rows)
    manifest.finished = now()
    manifest.status = "interrupted" if interrupted else "finished"
    manifest.counts = {
        "items": result.n_items, "cached": result.n_cached, "generated": result.n_generated,
        "failed": result.n_failed, "truncated": result.n_truncated, "written": len(rows),
    }
    manifest.save(run_dir)
    if interrupted:
        log(
            f"[yellow]interrupted: {len(rows)} of {sum(len(p.items) for p in plans)} items saved. "
            f"Resume with: medsbench eval --resume --out {run_dir}[/yellow]"
        )
        raise KeyboardInterrupt
    if do_score and rows:
        result.results = score(pred_path, run_dir, log)
    return result


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        return None


def _progress(console: Any, enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _run_task(plan: TaskPlan, backend: Backend, store: ResultCache, fh, bar, done, result: RunResult) -> None:
    """Answer every item of one task: cache hits first, then the backend; each result durable at once."""
    tid = plan.entry.id
    items = plan.items
    stats = result.per_task.setdefault(
        tid, {"category": plan.entry.category, "n": len(items), "cached": 0, "failed": 0, "truncated": 0, "seconds": 0.0}
    )
    task = bar.add_task(f"{tid} {plan.entry.slug}", total=len(items), rate="")
    result.n_items += len(items)
    stats["truncated"] = sum(i.truncated for i in items)
    result.n_truncated += stats["truncated"]
    hits = store.get_many([i.key for i in items])
    waiting: dict[str, list[int]] = {}  # cache key -> positions (identical prompts are generated once)
    for pos, item in enumerate(items):
        hit = hits.get(item.key)
        if item.error is not None:  # cannot be sent at all: an explicit failure, never a model call
            _emit(tid, pos, item, Response(item.key, "", None, None, 0.0, item.error), fh, done)
            stats["failed"] += 1
            result.n_failed += 1
        elif hit is not None:
            _emit(tid, pos, item, hit, fh, done)
            stats["cached"] += 1
            result.n_cached += 1
        else:
            waiting.setdefault(item.key, []).append(pos)
    fh.flush()
    bar.update(task, completed=len(items) - sum(len(v) for v in waiting.values()))
    requests = []
    for key, positions in waiting.items():
        item = items[positions[0]]
        requests.append(Request(id=key, messages=item.messages, prompt=item.prompt, max_new_tokens=item.max_new_tokens))
    t0 = time.perf_counter()
    finished = 0
    for resp in backend.iter_generate(requests):
        store.put_many([(resp.id, resp)])  # durable before anything else (errors are not cached)
        for pos in waiting[resp.id]:
            _emit(tid, pos, items[pos], resp, fh, done)
            finished += 1
            if resp.error is not None:
                stats["failed"] += 1
                result.n_failed += 1
            else:
                result.n_generated += 1
        fh.flush()
        rate = finished / max(time.perf_counter() - t0, 1e-9)
        bar.update(task, advance=len(waiting[resp.id]), rate=f"{rate:.2f} it/s")
    stats["seconds"] = time.perf_counter() - t0


def _emit(tid: str, pos: int, item: Item, resp: Response, fh, done: dict[tuple[str, int], dict[str, Any]]) -> None:
    row = prediction_row(item, resp)
    done[(tid, pos)] = row
    fh.write(dumps(row))
    fh.write(b"\n")
