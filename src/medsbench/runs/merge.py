"""``merge_shards``: sharded runs (``eval --shard I/N``) back into the run an unsharded eval writes.

Shard I of N answers the items at positions I-1, I-1+N, ... of every task (see
:func:`medsbench.records.config.parse_shard`), so interleaving the shards' rows task by task restores
the unsharded order. The merge refuses shards that do not measure the same thing (config, model
identity, task-file hashes), that overlap or leave a gap, or that are unfinished or hold failed items
(resume those first), and an output folder that is one of the shards or holds any other run; the
predictions it writes, their official CSV and results.json are those of the unsharded run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.records.folder import RunFolder, items_digest
from medsbench.records.manifest import RunManifest
from medsbench.records.predictions import PredictionRow
from medsbench.redact import redact_text
from medsbench.reporter import LogReporter, Reporter
from medsbench.runs.run import RunOptions, RunResult, finish_run

# What may differ between shards of one run: their own item counts, timings, command lines, and the
# places they ran in (shards may run on different machines: task files are compared by content).
_PER_SHARD = {"config", "tasks", "counts", "started", "finished", "status", "command", "versions", "merged_from",
              "workspace", "cache"}


def _measured(m: RunManifest) -> dict[str, Any]:
    """Everything that determines a shard's outputs, without its shard-specific parts."""
    assert m.config is not None
    data = m.model_dump(mode="json", exclude=_PER_SHARD)
    data["config"] = {k: v for k, v in m.config.measured().items() if k != "shard"}
    data["tasks"] = {
        tid: {**t.model_dump(mode="json", exclude={"n", "files", "items_sha256"}),
              "files": {s: f.sha256 for s, f in t.files.items()}}
        for tid, t in m.tasks.items()
    }
    return data


def _shards(folders: list[RunFolder]) -> tuple[list[RunManifest], list[int], int]:
    """The shards' manifests, their 1-based indexes (in the order given) and N; every check but the rows."""
    manifests = [f.manifest() for f in folders]
    indexes: list[int] = []
    counts: set[int] = set()
    for folder, m in zip(folders, manifests, strict=True):
        shard = m.config.shard_index if m.config is not None else None
        if shard is None:
            raise MedsbenchError("not a shard (run without --shard)", where=str(folder.path))
        if m.status != "finished":
            hint = f"resume it first: medsbench eval --resume --out {folder.path}"
            raise MedsbenchError(f"shard is {m.status}, not finished ({hint})", where=str(folder.path))
        indexes.append(shard[0])
        counts.add(shard[1])
    if len(counts) != 1:
        raise MedsbenchError(f"shards of different splits: {', '.join(m.config.shard or '' for m in manifests if m.config)}")
    count = counts.pop()
    by_index: dict[int, RunFolder] = {}
    for folder, i in zip(folders, indexes, strict=True):
        if i in by_index:
            raise MedsbenchError(f"shard {i}/{count} given twice: {by_index[i].path} and {folder.path}")
        by_index[i] = folder
    gaps = [f"{i}/{count}" for i in range(1, count + 1) if i not in by_index]
    if gaps:
        raise MedsbenchError(f"missing shard(s) {', '.join(gaps)}: every shard of the run is needed")
    first = _measured(manifests[0])
    for folder, m in zip(folders[1:], manifests[1:], strict=True):
        theirs = _measured(m)
        differ = sorted(k for k in set(first) | set(theirs) if first.get(k) != theirs.get(k))
        differ += sorted(k for k in set(first["config"]) | set(theirs["config"]) if first["config"].get(k) != theirs["config"].get(k))
        if differ:
            raise MedsbenchError(f"this shard measures something else than {folders[0].path} ({', '.join(differ)} differ)",
                                 where=str(folder.path))
    return manifests, indexes, count


def _interleave(folders: list[RunFolder], indexes: list[int], count: int, tasks: list[str]) -> list[PredictionRow]:
    per_shard: dict[int, dict[str, list[PredictionRow]]] = {}
    for folder, i in zip(folders, indexes, strict=True):
        grouped: dict[str, list[PredictionRow]] = {}
        for row in folder.predictions():  # checked against the shard's own plan
            grouped.setdefault(row.task_id, []).append(row)
        per_shard[i] = grouped
    rows: list[PredictionRow] = []
    for tid in tasks:
        total = sum(len(g.get(tid, [])) for g in per_shard.values())
        rows.extend(per_shard[pos % count + 1][tid][pos // count] for pos in range(total))
    return rows


def _check_out(out: RunFolder, folders: list[RunFolder]) -> None:
    where = out.path.resolve()
    for folder in folders:
        if folder.path.resolve() == where:
            raise MedsbenchError("--out is one of the shards: the merge would overwrite its own input (choose another --out)",
                                 where=str(out.path))
    if out.is_run():
        raise MedsbenchError("--out already holds a run: merge into a new folder", where=str(out.path))


def merge_shards(shards: Sequence[str | Path], out: str | Path, *, reporter: Reporter | None = None,
               options: RunOptions | None = None) -> RunManifest:
    """Merge the run folders of every shard of one sharded eval into ``out``; returns its manifest
    (results.json too when ``options.scorer`` is given: :func:`medsbench.pipeline.merge_runs` passes it)."""
    if not shards:
        raise MedsbenchError("runs merge needs the run folders of the shards")
    options = options or RunOptions(reporter=reporter or LogReporter())
    folders = [RunFolder(s) for s in shards]
    target = RunFolder(out)
    _check_out(target, folders)
    manifests, indexes, count = _shards(folders)
    first = manifests[0]
    assert first.config is not None
    rows = _interleave(folders, indexes, count, list(first.tasks))
    with target.lock():
        _check_out(target, folders)  # again under the lock
        manifest = first.model_copy(deep=True, update={"config": first.config.model_copy(update={"shard": None})})
        for tid, t in manifest.tasks.items():
            t.n = sum(m.tasks[tid].n for m in manifests)
            t.items_sha256 = items_digest(r.id for r in rows if r.task_id == tid)
        manifest.counts = {key: sum(m.counts.get(key, 0) for m in manifests) for key in first.counts}
        manifest.started = min(m.started for m in manifests)
        manifest.command = [redact_text(a) for a in sys.argv]
        order = sorted(range(len(folders)), key=lambda k: indexes[k])
        manifest.merged_from = [str(folders[k].path.resolve()) for k in order]
        manifest.status = "running"
        manifest.finished = None
        target.save_manifest(manifest)
        target.write_predictions(rows)
        options.reporter.message(f"merged {len(folders)} shards: {len(rows)} predictions in {target.path}")
        result = RunResult(target, manifest)
        finish_run(result, rows, options)
    return manifest
