"""`build_mixture`: train-split task files -> a clean, decontaminated, documented mixture.

Two streaming passes over the inputs, task by task in a fixed order:

1. **screen** (``ins.screen``): exact dedupe, decontamination against the benchmark
   test splits (``ins.decontam``), near-dup dedupe; one flag byte per instance and a
   seeded reservoir of demo candidates per task;
2. **emit** (``ins.emit``): with the per-task targets from :func:`mixer.allocate`,
   select instances (exact counts, seeded), choose instruction and shots, build the
   evaluation prompt (``medsbench.prompts``) and append records to the shards.

The pure per-chunk work (fingerprints, decontamination, MinHash, prompts) and the
validation and test-index stages run on ``workers`` processes (``ins.parallel``); the
order-dependent decisions stay in this process, in task and file order, so one and
N workers write the same bytes.

Everything is written into a staging folder beside ``out`` and swapped in whole at
the end (``export.swap_in``): a build that fails or is killed leaves the previous
mixture at ``out`` untouched and complete; staging folders of dead builds are
removed by the next build.

Memory: the indexes of ``dedupe``/``decontam`` (documented there; workers map the
test index from disk rather than copy it), one byte per input instance for the keep
flags, the demo reservoirs (``demo_pool`` instances per task) and a few chunks of
instances in flight. Nothing else grows with the data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.fileio import stable_seed, write_json
from medsbench.ins.config import InsConfig
from medsbench.ins.decontam import TestIndex
from medsbench.ins.dedupe import Bander, Signer, normalise
from medsbench.ins.emit import EmitJob, FileLabels, TaskContext, emit_chunk, slim
from medsbench.ins.inputs import InputFile, bench_folders, bench_test_files, discover, validate_one
from medsbench.ins.instructions import Variants, load_sidecars
from medsbench.ins.mixer import Reservoir, Selector, allocate
from medsbench.ins.parallel import Workers, default_workers
from medsbench.ins.report import BuildRecord, DecontamRecord, length_hist, stats_of
from medsbench.ins.screen import ChunkJob, Screener, ScreenSettings, TaskState, check_instance, fingerprint, forget_indexes
from medsbench.tasks.format import Instance, iter_instances
from medsbench.tasks.catalog import task_order as _task_order
from medsbench.ins.export import ShardWriter
from medsbench import __version__
from medsbench.ins.card import write_card
from medsbench.fileio import exclusive_lock
from medsbench.ins.export import clean_stale, new_stage, swap_in

CHUNK = 4096
PRELOAD = ("medsbench.ins.screen", "medsbench.ins.emit", "medsbench.ins.inputs", "medsbench.tasks.validate")

Log = Callable[[str], None]


def _chunks(path: Path) -> Iterator[list[Instance]]:
    buf: list[Instance] = []
    for inst in iter_instances(path):
        buf.append(inst)
        if len(buf) >= CHUNK:
            yield buf
            buf = []
    if buf:
        yield buf


@dataclass
class Plan:
    """What a build reads: input files by task (with instructions) and the benchmark test files."""

    cfg: InsConfig
    files: list[InputFile]
    skipped: list[str]
    states: dict[str, TaskState]
    decontam: DecontamRecord


def plan_build(tasks: Sequence[str | os.PathLike], ins_files: Sequence[str | os.PathLike], cfg: InsConfig,
               bench_tasks: Sequence[str | os.PathLike] | None) -> Plan:
    """Find the inputs and the test files; refuse to build without a test file unless decontamination is off."""
    files, skipped = discover(tasks, ins_files, cfg.splits)
    if not files:
        raise MedsbenchError(f"no input task files with split {'/'.join(cfg.splits)} in {', '.join(map(str, [*tasks, *ins_files]))}")
    defs = cfg.instructions.definitions
    sidecar: dict[str, Variants] = load_sidecars([*([defs] if defs is not None else []), *cfg.instructions.sidecars])
    states: dict[str, TaskState] = {}
    for f in sorted(files, key=lambda f: (_task_order(f.task_id), str(f.path))):
        states.setdefault(f.task_id, TaskState(f.task_id)).files.append(f)
    for tid, st in states.items():
        side = sidecar.get(tid)
        st.original = side.original if side and cfg.instructions.sidecar_original else st.files[0].definition
        st.paraphrases = list(side.paraphrases) if side else []
        st.pool = Reservoir(cfg.shots.demo_pool, stable_seed(cfg.seed, "pool", tid))
    return Plan(cfg, files, skipped, states, decontam_plan(cfg, tasks, bench_tasks, [f.path for f in files]))


def decontam_plan(cfg: InsConfig, tasks: Sequence[str | os.PathLike], bench_tasks: Sequence[str | os.PathLike] | None,
                  inputs: Sequence[Path]) -> DecontamRecord:
    """The benchmark test files to decontaminate against (default: the test splits beside the train splits)."""
    if not cfg.decontam.enabled:
        return DecontamRecord(enabled=False)
    folders = bench_folders(tasks, None) if bench_tasks is None else [Path(b) for b in bench_tasks]
    files = bench_test_files(folders, exclude=inputs)
    if not files:
        where = ", ".join(map(str, folders)) or "no folder"
        raise MedsbenchError(
            f"no benchmark test file (a test split) in {where}: there is nothing to decontaminate the mixture against. "
            "Give the folder of the test splits with --bench-tasks DIR, or build without decontamination with --no-decontamination"
        )
    return DecontamRecord(enabled=True, folders=folders, files=files)


def _validate(plan: Plan, pool: Workers) -> int:
    """Run the task-file validator on every input; the first error (in task order) stops the build."""
    if not plan.cfg.validate_inputs:
        return 0
    paths = [f.path for st in plan.states.values() for f in st.files]
    warnings = 0
    for error, n_warn in pool.map(validate_one, paths):
        if error is not None:
            raise MedsbenchError(error)
        warnings += n_warn
    return warnings


def _screen(plan: Plan, settings: ScreenSettings, index: TestIndex | None, pool: Workers) -> Screener:
    """Pass 1 over every input, in task and file order; fills keep flags, counts and demo pools."""
    screener = Screener(plan.cfg, index)
    max_demo = plan.cfg.shots.max_demo_chars
    in_flight: list[tuple[TaskState, InputFile, list[Instance]]] = []

    def jobs() -> Iterator[ChunkJob]:
        for st in plan.states.values():
            definition = normalise(st.original)
            for f in st.files:
                for offset, chunk in _offsets(_chunks(f.path)):
                    for pos, inst in enumerate(chunk):
                        check_instance(inst, offset + pos, f.path)
                    in_flight.append((st, f, chunk))
                    yield ChunkJob(settings, definition, [i.input for i in chunk], [i.target for i in chunk])

    flags: dict[Path, list[np.ndarray]] = {f.path: [] for st in plan.states.values() for f in st.files}
    for fp in pool.map(fingerprint, jobs()):
        st, f, chunk = in_flight.pop(0)
        keep = screener.apply(st, f, chunk, fp)
        flags[f.path].append(keep)
        assert st.pool is not None  # made for every task by plan_build
        for inst, ok in zip(chunk, keep):
            if ok and (max_demo is None or len(inst.input) + len(inst.target) <= max_demo):
                st.pool.offer(inst)
    for st in plan.states.values():
        for f in st.files:
            st.keep[f.path] = np.concatenate(flags[f.path]) if flags[f.path] else np.zeros(0, dtype=bool)
    return screener


def _offsets(chunks: Iterator[list[Instance]]) -> Iterator[tuple[int, list[Instance]]]:
    offset = 0
    for chunk in chunks:
        yield offset, chunk
        offset += len(chunk)


def _fail_on_contamination(plan: Plan, out: Path) -> None:
    states = plan.states
    n_contam = sum(st.counts["contaminated"] for st in states.values())
    if not (n_contam and plan.cfg.decontam.fail):
        return
    report = {tid: {"dropped": st.counts["contaminated"], "reasons": dict(st.contam), "test_tasks": dict(st.contam_tasks),
                    "examples": st.contam_examples} for tid, st in states.items() if st.counts["contaminated"]}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "contamination.json", report)
    worst = ", ".join(f"{t} ({r['dropped']})" for t, r in list(report.items())[:5])
    raise MedsbenchError(f"{n_contam} training example(s) overlap benchmark test instances: {worst}; report in {out / 'contamination.json'}")


def _emit_jobs(plan: Plan, targets: dict[str, int]) -> Iterator[EmitJob]:
    """Chunks of the selected clean instances with how often to emit each, in task and file order."""
    cfg = plan.cfg
    for tid, st in plan.states.items():
        sel = Selector(st.counts["clean"], targets[tid], stable_seed(cfg.seed, "select", tid))
        assert st.pool is not None
        ctx = TaskContext(tid, st.original, tuple(st.paraphrases), tuple(slim(i) for i in st.pool.sample()), cfg.seed,
                          cfg.shots.probs, cfg.instructions.paraphrase_prob)
        for f in st.files:
            flags = st.keep[f.path]
            labels = FileLabels(f.category, f.source, f.language)
            for offset, chunk in _offsets(_chunks(f.path)):
                items = []
                for inst, ok in zip(chunk, flags[offset : offset + len(chunk)]):
                    if ok and (times := sel.next()):
                        items.append((inst.id, inst.input, inst.target, times))
                if items:
                    yield EmitJob(ctx, labels, items)


def _emit(plan: Plan, rec: BuildRecord, stage: Path, pool: Workers) -> None:
    """Pass 2: write the records of every selected instance into ``stage/data`` (and ``jsonl``)."""

    writer = ShardWriter(stage, sum(rec.targets.values()), plan.cfg.export)
    try:
        for records in pool.map(emit_chunk, _emit_jobs(plan, rec.targets)):
            st = plan.states[records.task_id]
            writer.add_records(records)
            st.shots.update(records.shots)
            st.instructions.update(records.paraphrase)
            st.counts["emitted"] += len(records)
            rec.paraphrased += sum(1 for v in records.paraphrase if v >= 0)
            rec.hist_prompt += length_hist([len(a) + len(b) for a, b in zip(records.system, records.user)])
            rec.hist_target += length_hist([len(t) for t in records.assistant])
        rec.shard_files = writer.close()
    except BaseException:
        writer.abort()
        raise


def _test_index(plan: Plan, signer: Signer | None, stage: Path, pool: Workers) -> tuple[TestIndex | None, Path | None]:
    """The benchmark test index, built on the workers and saved for them to map from disk."""
    dec = plan.decontam
    if not dec.enabled:
        return None, None
    index = TestIndex.build(dec.files, plan.cfg.decontam, signer, mapper=pool.map)
    dec.index = index
    folder = stage / ".decontam-index"
    index.save(folder)
    return index, folder


def _build(plan: Plan, stage: Path, out: Path, pool: Workers, say: Log) -> dict[str, Any]:

    cfg = plan.cfg
    warnings = _validate(plan, pool)
    signer = Signer(num_perm=cfg.dedupe.num_perm, shingle=cfg.dedupe.shingle) if (cfg.dedupe.near or cfg.decontam.near) else None
    index, index_dir = _test_index(plan, signer, stage, pool)
    dec = plan.decontam
    if dec.enabled:
        say(f"decontamination: {index.n_instances if index else 0} test instance(s) in {len(dec.files)} file(s) "
            f"from {', '.join(map(str, dec.folders))}")
    else:
        say("decontamination: off (--no-decontamination): nothing is checked against benchmark test files")
    bander = Bander(threshold=cfg.dedupe.threshold, num_perm=cfg.dedupe.num_perm) if cfg.dedupe.near else None
    screener = _screen(plan, ScreenSettings(cfg, index_dir, signer, bander), index, pool)
    n_contam = sum(st.counts["contaminated"] for st in plan.states.values())
    say(f"screened {sum(st.counts['input'] for st in plan.states.values())} instance(s): {n_contam} contaminated")
    if index_dir is not None:
        forget_indexes()
        shutil.rmtree(index_dir)
    _fail_on_contamination(plan, out)
    return _finish(plan, stage, pool, say, BuildRecord(
        cfg=cfg, name=out.name, version=__version__, files=plan.files, skipped=plan.skipped, validation_warnings=warnings,
        states=plan.states, targets={}, decontam=dec, index_bytes=screener.index_bytes))


def _finish(plan: Plan, stage: Path, pool: Workers, say: Log, rec: BuildRecord) -> dict[str, Any]:
    """Allocation, pass 2, stats.json and the card."""

    rec.targets = allocate({tid: st.counts["clean"] for tid, st in plan.states.items()}, plan.cfg.balance)
    if sum(rec.targets.values()) == 0:
        raise MedsbenchError("nothing to write: every input instance was dropped (duplicates, contamination or caps)")
    _emit(plan, rec, stage, pool)
    say(f"wrote {sum(s['rows'] for s in rec.shard_files)} example(s) in {len(rec.shard_files)} shard(s)")
    stats = stats_of(rec, stage)
    write_json(stage / "stats.json", stats)
    write_card(stage, stats)
    return stats


def build_mixture(
    tasks: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    cfg: InsConfig | None = None,
    *,
    ins_files: Sequence[str | os.PathLike] = (),
    bench_tasks: Sequence[str | os.PathLike] | None = None,
    log: Log | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Build a mixture into ``out`` (``data/*.parquet``, ``card.md``, ``stats.json``); returns the stats.

    ``bench_tasks``: folders of benchmark test splits to decontaminate against (default: the
    ``tasks`` folders, i.e. the test splits beside the train splits); no test file there is an
    error unless ``cfg.decontam.enabled`` is off. ``workers``: processes for the parallel stages
    (default: the CPUs this process may use); the output does not depend on it.
    """

    cfg = cfg or InsConfig()
    say = log or (lambda _m: None)
    out = Path(out)
    plan = plan_build(tasks, ins_files, cfg, bench_tasks)
    say(f"{len(plan.files)} input file(s); {len(plan.skipped)} skipped by split")
    clean_stale(out)
    stage = new_stage(out)
    try:
        # The staging folder's lock marks the build alive (clean_stale leaves it); it is swapped in with the
        # mixture and becomes the lock file of ``out``.
        with exclusive_lock(stage, "mixture staging folder"), Workers(workers or default_workers(), preload=PRELOAD) as pool:
            stats = _build(plan, stage, out, pool, say)
            swap_in(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stats
