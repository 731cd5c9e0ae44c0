"""`build_mixture`: train-split task files -> a clean, decontaminated, documented mixture.

Two streaming passes over the inputs, task by task in a fixed order:

1. **screen**: exact dedupe, decontamination, near-dup dedupe; keep one flag
   byte per instance and a seeded reservoir of demo candidates per task;
2. **emit**: with the per-task targets from :func:`mixer.allocate`, select
   instances (exact counts, seeded), choose instruction and shots, build the
   evaluation prompt (``medsbench.prompts``) and append records to the shards.

Memory: the indexes of ``dedupe``/``decontam`` (documented there), one byte per
input instance for the keep flags, the demo reservoirs (``demo_pool`` instances
per task) and a chunk of instances. Nothing else grows with the data.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.fileio import sha256_file, stable_seed, write_json
from medsbench.ins.config import InsConfig
from medsbench.ins.decontam import REASONS, TestIndex
from medsbench.ins.dedupe import (
    Bander,
    ExactDeduper,
    NearDeduper,
    Signer,
    digest,
    digests,
    normalise,
    script_classes,
    token_hashes,
    tokens,
)
from medsbench.ins.instructions import Variants, load_sidecars
from medsbench.ins.mixer import Reservoir, Selector, VariantChooser, allocate
from medsbench.prompts import build_prompt, sample_demos
from medsbench.tasks.catalog import LANGUAGE_CODES
from medsbench.tasks.format import (
    Instance,
    iter_instances,
    read_meta,
    split_of,
    task_id_of,
)
from medsbench.tasks.workspace import task_order as _task_order

CHUNK = 4096
CONTAM_EXAMPLES = 10  # per task, in the report
LENGTH_EDGES = [0, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000]

Log = Callable[[str], None]


@dataclass
class InputFile:
    path: Path
    task_id: str
    origin: str  # "tasks" (ours, by split) or "ins" (official MedS-Ins files the user brings)
    definition: str
    category: str
    source: str
    language: str
    license: str


@dataclass
class TaskState:
    task_id: str
    files: list[InputFile] = field(default_factory=list)
    original: str = ""
    paraphrases: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    contam: Counter = field(default_factory=Counter)  # reason -> n
    contam_tasks: Counter = field(default_factory=Counter)  # test task -> n
    contam_examples: list[dict] = field(default_factory=list)
    keep: dict[Path, np.ndarray] = field(default_factory=dict)
    pool: Reservoir | None = None
    shots: Counter = field(default_factory=Counter)
    instructions: Counter = field(default_factory=Counter)  # paraphrase index (-1 = original) -> n


def _first(v: Any) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _language_code(name: str | None) -> str:
    if not name:
        return "unknown"
    return LANGUAGE_CODES.get(str(name).lower(), str(name).lower())


def describe(path: Path, origin: str) -> InputFile:
    meta = read_meta(path)
    raw_ours = meta.get("medsbench")
    ours = raw_ours if isinstance(raw_ours, dict) else {}
    cats = meta.get("Categories") or []
    cats = [cats] if isinstance(cats, str) else cats
    definition = _first(meta.get("Definition"))
    if not isinstance(definition, str) or not definition.strip():
        raise MedsbenchError("Definition: missing or empty", where=str(path))
    return InputFile(
        path=path,
        task_id=task_id_of(meta, path) or path.name.split(".")[0],
        origin=origin,
        definition=definition.strip(),
        category=str(cats[0]) if cats else "Uncategorized",
        source=str(_first(meta.get("Source")) or path.name.split(".")[0]),
        language=_language_code(_first(meta.get("Input_language"))),
        license=str(ours.get("license") or "unknown (no medsbench licence field; see the file's Source/URL)"),
    )


def _task_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MedsbenchError("no such task file or folder", where=str(path))
    return sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and not p.name.startswith("."))


def discover(tasks: Sequence[str | os.PathLike], ins_files: Sequence[str | os.PathLike], splits: Sequence[str]) -> tuple[list[InputFile], list[str]]:
    """Input files: ``tasks`` entries filtered by split, ``ins_files`` entries taken whole."""
    out: dict[Path, InputFile] = {}
    skipped: list[str] = []
    for origin, roots in (("tasks", tasks), ("ins", ins_files)):
        for root in roots:
            for p in _task_files(Path(root)):
                key = p.resolve()
                if key in out:
                    continue
                if origin == "tasks":
                    split = split_of(read_meta(p), p)
                    if split not in splits:
                        skipped.append(f"{p} ({split})")
                        continue
                out[key] = describe(p, origin)
    return list(out.values()), skipped


def bench_test_files(dirs: Sequence[str | os.PathLike]) -> list[Path]:
    files = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in _task_files(d):
            if split_of(read_meta(p), p) == "test":
                files.append(p)
    return files


def validate_inputs(files: Sequence[Path]) -> int:
    """Run the task-file validator (medsbench.tasks.validate) on every input; errors stop the build. Returns #warnings."""
    from medsbench.tasks.validate import validate_file

    warnings = 0
    for p in files:
        problems = validate_file(p)
        errors = [pr for pr in problems if getattr(pr, "level", "error") == "error"]
        warnings += len(problems) - len(errors)
        if errors:
            more = f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""
            raise MedsbenchError(f"task file failed validation: {errors[0]}{more}")
    return warnings


def _chunks(path: Path) -> Iterator[list[Instance]]:
    buf: list[Instance] = []
    for inst in iter_instances(path):
        buf.append(inst)
        if len(buf) >= CHUNK:
            yield buf
            buf = []
    if buf:
        yield buf


def _check_instance(inst: Instance, index: int, path: Path) -> None:
    if not isinstance(inst.input, str):
        raise MedsbenchError(f"input: expected a string, got {type(inst.input).__name__}", where=f"{path}:{index}")
    out = inst.output
    if not isinstance(out, list) or not out or not all(isinstance(o, str) for o in out):
        raise MedsbenchError("output: expected a string or a non-empty list of strings", where=f"{path}:{index}")


class Screener:
    """Pass 1: decides which instances are clean (dedupe + decontamination)."""

    def __init__(self, cfg: InsConfig, test_index: TestIndex | None, signer: Signer | None) -> None:
        self.cfg = cfg
        self.exact = ExactDeduper() if cfg.dedupe.exact else None
        self.test = test_index
        self.signer = signer
        self.near = NearDeduper() if cfg.dedupe.near else None
        self.bander = Bander(threshold=cfg.dedupe.threshold, num_perm=cfg.dedupe.num_perm) if cfg.dedupe.near else None
        self.use_tokens = test_index is not None and test_index.n_instances > 0 or cfg.dedupe.near

    def _key(self, definition_norm: str, inst: Instance) -> str:
        k = self.cfg.dedupe.key
        if k == "input":
            return normalise(inst.input)
        if k == "input_output":
            return f"{normalise(inst.input)}\x1f{normalise(inst.target)}"
        return f"{definition_norm}\x1f{normalise(inst.input)}\x1f{normalise(inst.target)}"

    def screen(self, state: TaskState, f: InputFile, chunk: list[Instance], offset: int) -> np.ndarray:
        n = len(chunk)
        for pos, inst in enumerate(chunk):
            _check_instance(inst, offset + pos, f.path)
        c = state.counts
        c["input"] += n
        keep = np.ones(n, dtype=bool)
        if self.exact is not None:
            dnorm = normalise(state.original)
            dup = self.exact.check(digests([self._key(dnorm, i) for i in chunk]))
            c["exact_duplicate"] += int(dup.sum())
            keep &= ~dup
        idx = np.nonzero(keep)[0]
        if self.use_tokens and len(idx):
            sub = [chunk[i] for i in idx]
            toks = [tokens(i.input) for i in sub]
            lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(sub))
            th = token_hashes([w for t in toks for w in t])
            sigs: np.ndarray | None = None
            active: np.ndarray | None = None  # set together with sigs
            if self.signer is not None:
                sigs, active = self.signer.signatures(th, lengths)
            if self.test is not None and self.test.n_instances:
                texts = [i.input for i in sub]
                reason, ttask = self.test.check(texts, th, lengths, sigs, active, script_classes(texts, toks))
                bad = reason >= 0
                for j in np.nonzero(bad)[0]:
                    why, tt = REASONS[reason[j]], self.test.tasks[ttask[j]]
                    state.contam[why] += 1
                    state.contam_tasks[tt] += 1
                    if len(state.contam_examples) < CONTAM_EXAMPLES:
                        state.contam_examples.append({"id": sub[j].id, "reason": why, "test_task": tt, "file": str(f.path)})
                c["contaminated"] += int(bad.sum())
                keep[idx[bad]] = False
                sel = ~bad
                idx, sub = idx[sel], [s for s, ok in zip(sub, sel) if ok]
                if sigs is not None and active is not None:
                    sigs, active = sigs[sel], active[sel]
            if self.near is not None and len(idx):
                # near dedupe on: build() made a signer, so sigs and active are set
                assert self.signer is not None and self.bander is not None and sigs is not None and active is not None
                if self.cfg.dedupe.key != "input":
                    otoks = [tokens(i.target) for i in sub]
                    olen = np.fromiter((len(t) for t in otoks), dtype=np.int64, count=len(sub))
                    osigs, oact = self.signer.signatures(Signer.salt_output(token_hashes([w for t in otoks for w in t])), olen)
                    sigs, active = np.minimum(sigs, osigs), active | oact
                group = digest(normalise(state.original)) if self.cfg.dedupe.key == "example" else 0
                act = np.nonzero(active)[0]
                bands = self.bander.bands(sigs[act])
                dup = self.near.check(bands, np.full(len(act), group, dtype=np.uint64))
                c["near_duplicate"] += int(dup.sum())
                keep[idx[act[dup]]] = False
        c["clean"] += int(keep.sum())
        return keep

    @property
    def index_bytes(self) -> dict[str, int]:
        return {
            "exact_dedupe": self.exact.seen.nbytes if self.exact else 0,
            "near_dedupe": self.near.seen.nbytes if self.near else 0,
            "decontam": self.test.nbytes if self.test else 0,
        }


def _hist(values: Sequence[int]) -> list[int]:
    counts = np.histogram(np.clip(values, 0, LENGTH_EDGES[-1] - 1), bins=LENGTH_EDGES)[0]
    return [int(x) for x in counts]


def build_mixture(
    tasks: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    cfg: InsConfig | None = None,
    *,
    ins_files: Sequence[str | os.PathLike] = (),
    bench_tasks: Sequence[str | os.PathLike] = (),
    log: Log | None = None,
) -> dict[str, Any]:
    """Build a mixture into ``out`` (``data/*.parquet``, ``card.md``, ``stats.json``); returns the stats."""
    from medsbench import __version__
    from medsbench.ins.card import write_card
    from medsbench.ins.export import ShardWriter

    cfg = cfg or InsConfig()
    say = log or (lambda _m: None)
    out = Path(out)
    files, skipped = discover(tasks, ins_files, cfg.splits)
    if not files:
        raise MedsbenchError(f"no input task files with split {'/'.join(cfg.splits)} in {', '.join(map(str, [*tasks, *ins_files]))}")
    say(f"{len(files)} input file(s); {len(skipped)} skipped by split")
    defs = cfg.instructions.definitions
    sidecar: dict[str, Variants] = load_sidecars([*([defs] if defs is not None else []), *cfg.instructions.sidecars])
    warnings = validate_inputs([f.path for f in files]) if cfg.validate_inputs else 0

    states: dict[str, TaskState] = {}
    for f in sorted(files, key=lambda f: (_task_order(f.task_id), str(f.path))):
        st = states.setdefault(f.task_id, TaskState(f.task_id))
        st.files.append(f)
    for tid, st in states.items():
        side = sidecar.get(tid)
        st.original = side.original if side and cfg.instructions.sidecar_original else st.files[0].definition
        st.paraphrases = list(side.paraphrases) if side else []
        st.pool = Reservoir(cfg.shots.demo_pool, stable_seed(cfg.seed, "pool", tid))

    signer = Signer(num_perm=cfg.dedupe.num_perm, shingle=cfg.dedupe.shingle) if (cfg.dedupe.near or cfg.decontam.near) else None
    test_files = bench_test_files(bench_tasks)
    input_paths = {f.path.resolve() for f in files}
    test_files = [p for p in test_files if p.resolve() not in input_paths]
    test_index = TestIndex.build(test_files, cfg.decontam, signer) if test_files else None
    say(f"decontamination: {test_index.n_instances if test_index else 0} test instance(s) in {len(test_files)} file(s)")

    # Pass 1: screen.
    screener = Screener(cfg, test_index, signer)
    max_demo = cfg.shots.max_demo_chars
    for st in states.values():
        assert st.pool is not None  # made for every task above
        for f in st.files:
            chunk_flags: list[np.ndarray] = []
            offset = 0
            for chunk in _chunks(f.path):
                keep = screener.screen(st, f, chunk, offset)
                offset += len(chunk)
                chunk_flags.append(keep)
                for inst, ok in zip(chunk, keep):
                    if ok and (max_demo is None or len(inst.input) + len(inst.target) <= max_demo):
                        st.pool.offer(Instance(inst.id, inst.input, [inst.target]))
            st.keep[f.path] = np.concatenate(chunk_flags) if chunk_flags else np.zeros(0, dtype=bool)
    n_contam = sum(st.counts["contaminated"] for st in states.values())
    say(f"screened {sum(st.counts['input'] for st in states.values())} instance(s): {n_contam} contaminated")
    if n_contam and cfg.decontam.fail:
        report = {tid: {"dropped": st.counts["contaminated"], "reasons": dict(st.contam), "test_tasks": dict(st.contam_tasks), "examples": st.contam_examples} for tid, st in states.items() if st.counts["contaminated"]}
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "contamination.json", report)
        worst = ", ".join(f"{t} ({r['dropped']})" for t, r in list(report.items())[:5])
        raise MedsbenchError(f"{n_contam} training example(s) overlap benchmark test instances: {worst}; report in {out / 'contamination.json'}")

    # Allocation.
    targets = allocate({tid: st.counts["clean"] for tid, st in states.items()}, cfg.balance)
    total = sum(targets.values())
    if total == 0:
        raise MedsbenchError("nothing to write: every input instance was dropped (duplicates, contamination or caps)")

    # Pass 2: emit.
    chooser = VariantChooser(cfg.seed, cfg.shots.probs, cfg.instructions.paraphrase_prob)
    writer = ShardWriter(out, total, cfg.export)
    prompt_len: list[int] = []
    target_len: list[int] = []
    hist_prompt = [0] * (len(LENGTH_EDGES) - 1)
    hist_target = [0] * (len(LENGTH_EDGES) - 1)
    paraphrased = 0
    try:
        for tid, st in states.items():
            sel = Selector(st.counts["clean"], targets[tid], stable_seed(cfg.seed, "select", tid))
            assert st.pool is not None
            pool = st.pool.sample()
            for f in st.files:
                flags = st.keep[f.path]
                pos = 0
                for chunk in _chunks(f.path):
                    for inst, ok in zip(chunk, flags[pos : pos + len(chunk)]):
                        if not ok:
                            continue
                        for r in range(sel.next()):
                            v = chooser.choose(tid, inst.id, r, len(st.paraphrases))
                            definition = st.paraphrases[v.paraphrase] if v.paraphrase >= 0 else st.original
                            paraphrased += v.paraphrase >= 0
                            st.instructions[v.paraphrase] += 1
                            demos = sample_demos(pool, v.shots, seed=v.demo_seed, task_id=tid, instance=inst) if v.shots else []
                            p = build_prompt(definition, inst, demos)
                            target = inst.target
                            writer.add(
                                p.system, p.user, target,
                                id=f"{tid}:{inst.id}" + (f"#{r}" if r else ""),
                                task_id=tid, category=f.category, source=f.source, language=f.language, shots=len(demos),
                            )
                            st.shots[len(demos)] += 1
                            st.counts["emitted"] += 1
                            prompt_len.append(len(p.system) + len(p.user))
                            target_len.append(len(target))
                    pos += len(chunk)
                    if len(prompt_len) >= 65536:
                        hist_prompt = [a + b for a, b in zip(hist_prompt, _hist(prompt_len))]
                        hist_target = [a + b for a, b in zip(hist_target, _hist(target_len))]
                        prompt_len, target_len = [], []
        shard_files = writer.close()
    except BaseException:
        writer.abort()
        raise
    hist_prompt = [a + b for a, b in zip(hist_prompt, _hist(prompt_len))]
    hist_target = [a + b for a, b in zip(hist_target, _hist(target_len))]
    say(f"wrote {writer.written} example(s) in {writer.n_shards} shard(s)")

    stats = _stats(
        cfg, out, states, targets, files, skipped, test_files, test_index, screener, shard_files,
        hist_prompt, hist_target, paraphrased, warnings, __version__,
    )
    write_json(out / "stats.json", stats)
    write_card(out, stats)
    (out / "contamination.json").unlink(missing_ok=True)
    return stats


def _share(counter: Counter) -> dict[str, dict[str, float]]:
    total = sum(counter.values()) or 1
    return {k: {"n": v, "share": round(v / total, 6)} for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))}


def _stats(cfg, out, states, targets, files, skipped, test_files, test_index, screener, shard_files, hist_prompt, hist_target, paraphrased, warnings, version) -> dict[str, Any]:
    by: dict[str, Counter[str]] = {k: Counter() for k in ("task", "category", "source", "language")}
    # The same shares over the clean instances, i.e. before balancing (caps, temperature, repeats).
    before: dict[str, Counter[str]] = {k: Counter() for k in ("task", "category", "source", "language")}
    licenses: dict[str, list[str]] = defaultdict(list)
    tasks: dict[str, Any] = {}
    shots: Counter = Counter()
    for tid, st in states.items():
        f0 = st.files[0]
        emitted = st.counts["emitted"]
        by["task"][tid] += emitted
        # A task's files may differ in category/source/language; the first file names the task.
        by["category"][f0.category] += emitted
        by["source"][f0.source] += emitted
        by["language"][f0.language] += emitted
        for key, name in (("task", tid), ("category", f0.category), ("source", f0.source), ("language", f0.language)):
            before[key][name] += st.counts["clean"]
        for f in st.files:
            if tid not in licenses[f.license]:
                licenses[f.license].append(tid)
        shots.update(st.shots)
        tasks[tid] = {
            "category": f0.category,
            "source": f0.source,
            "language": f0.language,
            "license": sorted({f.license for f in st.files}),
            "files": [str(f.path) for f in st.files],
            "origin": sorted({f.origin for f in st.files}),
            "paraphrases": len(st.paraphrases),
            "paraphrased": sum(n for i, n in st.instructions.items() if i >= 0),
            "paraphrases_used": sum(1 for i in st.instructions if i >= 0),
            "distinct_instructions": len(st.instructions),
            "input": st.counts["input"],
            "exact_duplicate": st.counts["exact_duplicate"],
            "near_duplicate": st.counts["near_duplicate"],
            "contaminated": st.counts["contaminated"],
            "contamination": {"reasons": dict(sorted(st.contam.items())), "test_tasks": dict(sorted(st.contam_tasks.items())), "examples": st.contam_examples},
            "clean": st.counts["clean"],
            "target": targets[tid],
            "emitted": emitted,
            "shots": {str(k): v for k, v in sorted(st.shots.items())},
        }
    tot = lambda key: sum(t[key] for t in tasks.values())  # noqa: E731
    emitted = tot("emitted")
    keep_bytes = sum(a.nbytes for st in states.values() for a in st.keep.values())
    return {
        "medsbench_version": version,
        "name": Path(out).name,
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "inputs": [{"path": str(f.path), "task_id": f.task_id, "origin": f.origin, "sha256": sha256_file(f.path)} for f in files],
        "skipped_inputs": skipped,
        "validation_warnings": warnings,
        "decontamination": {
            "test_files": [str(p) for p in test_files],
            "test_tasks": test_index.tasks if test_index else [],
            "test_instances": test_index.n_instances if test_index else 0,
            "ngram": cfg.decontam.ngram,
            "ngram_han": cfg.decontam.ngram_han,
            "ngram_kana": cfg.decontam.ngram_kana,
            "cjk_test_instances": test_index.cjk_instances if test_index else 0,
            "ignored_boilerplate_cjk_ngrams": test_index.ignored_cjk_ngrams if test_index else 0,
            "near": cfg.decontam.near,
            "threshold": cfg.decontam.threshold,
            "ignored_boilerplate_ngrams": test_index.ignored_ngrams if test_index else 0,
        },
        "totals": {
            "input": tot("input"),
            "exact_duplicate": tot("exact_duplicate"),
            "near_duplicate": tot("near_duplicate"),
            "contaminated": tot("contaminated"),
            "clean": tot("clean"),
            "examples": emitted,
            "tasks": len(tasks),
            "shards": len(shard_files),
        },
        "instructions": {
            "original": emitted - paraphrased,
            "paraphrase": paraphrased,
            "definitions": str(cfg.instructions.definitions) if cfg.instructions.definitions else None,
            "tasks_with_paraphrases": sum(1 for t in tasks.values() if t["paraphrases"]),
            "distinct_paraphrases_used": sum(sum(1 for i in st.instructions if i >= 0) for st in states.values()),
        },
        "shots": {str(k): v for k, v in sorted(shots.items())},
        "shares": {k: _share(c) for k, c in by.items()},
        "shares_before_balancing": {k: _share(c) for k, c in before.items()},
        "licenses": {k: v for k, v in sorted(licenses.items())},
        "lengths": {"edges": LENGTH_EDGES, "prompt_chars": hist_prompt, "target_chars": hist_target},
        "indexes_bytes": {**screener.index_bytes, "keep_flags": keep_bytes},
        "shard_files": [{**s, "sha256": sha256_file(Path(out) / s["path"])} for s in shard_files],
        "tasks": tasks,
    }
