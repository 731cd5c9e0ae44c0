"""``merge_runs``: sharded runs (``eval --shard I/N``) back into the run an unsharded eval writes.

Shard I answers the items at positions I, I+N, ... of every task (see :func:`medsbench.runs.run.parse_shard`),
so interleaving the shards' rows task by task restores the unsharded order. The merge refuses shards that
do not measure the same thing (model identity, protocol, settings, task-file hashes), that overlap or
leave a gap, or that are unfinished or hold failed items (resume those first); the predictions it
writes, their official CSV and results.json are those of the unsharded run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.fileio import exclusive_lock
from medsbench.redact import redact_text
from medsbench.records import PredictionRow, read_predictions, write_official_csv, write_predictions
from medsbench.records.manifest import RunManifest, now
from medsbench.runs.run import Scorer, parse_shard, score

# What may differ between shards of one run: their own item counts, timings, command lines, and the
# places they ran in (shards may run on different machines: task files are compared by content).
_PER_SHARD = {"tasks", "args", "counts", "started", "finished", "status", "command", "versions", "merged_from",
              "workspace", "cache"}


def _measured(m: RunManifest) -> dict[str, Any]:
    """Everything that determines a shard's outputs, without its shard-specific parts."""
    data = m.model_dump(mode="json", exclude=_PER_SHARD)
    data["args"] = {k: v for k, v in m.args.items() if k != "shard"}
    data["tasks"] = {
        tid: {**t.model_dump(mode="json", exclude={"n", "files"}), "files": {s: f.sha256 for s, f in t.files.items()}}
        for tid, t in m.tasks.items()
    }
    return data


def merge_runs(shards: Sequence[str | Path], out: str | Path, *, log: Callable[[str], None] = lambda s: None,
               scorer: Scorer | None = None) -> RunManifest:
    """Merge the run folders of every shard of one sharded eval into ``out``; returns its manifest
    (results.json too when a ``scorer`` is given: :func:`medsbench.pipeline.merge_runs` passes it)."""
    if not shards:
        raise MedsbenchError("runs merge needs the run folders of the shards")
    dirs = [Path(s) for s in shards]
    manifests = [RunManifest.load(d) for d in dirs]
    parsed = []
    for d, m in zip(dirs, manifests, strict=True):
        spec = m.args.get("shard")
        if not spec:
            raise MedsbenchError("not a shard (run without --shard)", where=str(d))
        if m.status != "finished":
            hint = "resume it first: medsbench eval --resume --out " + str(d)
            raise MedsbenchError(f"shard is {m.status}, not finished ({hint})", where=str(d))
        parsed.append(parse_shard(spec) or (0, 1))
    count = parsed[0][1]
    if any(n != count for _, n in parsed):
        raise MedsbenchError(f"shards of different splits: {', '.join(m.args['shard'] for m in manifests)}")
    by_index: dict[int, Path] = {}
    for d, (i, _n) in zip(dirs, parsed, strict=True):
        if i in by_index:
            raise MedsbenchError(f"shard {i}/{count} given twice: {by_index[i]} and {d}")
        by_index[i] = d
    gaps = [f"{i}/{count}" for i in range(count) if i not in by_index]
    if gaps:
        raise MedsbenchError(f"missing shard(s) {', '.join(gaps)}: every shard of the run is needed")
    first = _measured(manifests[0])
    for d, m in zip(dirs[1:], manifests[1:], strict=True):
        theirs = _measured(m)
        differ = sorted(k for k in set(first) | set(theirs) if first.get(k) != theirs.get(k))
        if differ:
            raise MedsbenchError(f"this shard measures something else than {dirs[0]} ({', '.join(differ)} differ)",
                                 where=str(d))

    order = sorted(range(len(dirs)), key=lambda k: parsed[k][0])
    per_shard: list[dict[str, list[PredictionRow]]] = []
    for k in order:
        grouped: dict[str, list[PredictionRow]] = {}
        for row in read_predictions(dirs[k] / "predictions.jsonl", format="jsonl"):
            grouped.setdefault(row.task_id, []).append(row)
        for tid, t in manifests[k].tasks.items():
            if len(grouped.get(tid, [])) != t.n:
                raise MedsbenchError(f"{tid}: {len(grouped.get(tid, []))} predictions, the manifest planned {t.n}",
                                     where=str(dirs[k] / "predictions.jsonl"))
        per_shard.append(grouped)
    rows: list[PredictionRow] = []
    for tid in manifests[0].tasks:
        total = sum(len(g.get(tid, [])) for g in per_shard)
        rows.extend(per_shard[pos % count][tid][pos // count] for pos in range(total))

    out = Path(out)
    with exclusive_lock(out, "run folder"):
        manifest = manifests[0].model_copy(deep=True)
        manifest.args = {**manifest.args, "shard": None}
        for tid, t in manifest.tasks.items():
            t.n = sum(m.tasks[tid].n for m in manifests)
        manifest.counts = {key: sum(m.counts.get(key, 0) for m in manifests) for key in manifests[0].counts}
        manifest.started = min(m.started for m in manifests)
        manifest.command = [redact_text(a) for a in sys.argv]
        manifest.merged_from = [str(dirs[k].resolve()) for k in order]
        manifest.status = "scoring" if scorer is not None else "finished"
        manifest.finished = None
        manifest.save(out)
        pred_path = out / "predictions.jsonl"
        write_predictions(pred_path, rows)
        write_official_csv(out / "predictions.csv", rows)
        log(f"merged {len(dirs)} shards: {len(rows)} predictions in {out}")
        if scorer is not None and score(pred_path, out, log, scorer) is None:
            return manifest  # left at "scoring": `medsbench eval --resume --out OUT` scores again
        manifest.status = "finished"
        manifest.finished = now()
        manifest.save(out)
    return manifest
