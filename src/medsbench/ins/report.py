"""``stats.json`` of a built mixture: what went in, what was dropped and why, what came out.

:class:`BuildRecord` collects what the build learnt; :func:`stats_of` turns it into
the JSON that ``card.md`` (``ins.card``) and ``medsbench ins stats`` read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsbench.fileio import sha256_file, sha256_text
from medsbench.ins.config import InsConfig
from medsbench.ins.decontam import TestIndex
from medsbench.ins.inputs import InputFile
from medsbench.ins.screen import TaskState

LENGTH_EDGES = [0, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000]


def length_hist(values: Sequence[int] | np.ndarray) -> np.ndarray:
    """Counts per ``LENGTH_EDGES`` bin (longer values in the last bin)."""
    return np.histogram(np.clip(np.asarray(values, dtype=np.int64), 0, LENGTH_EDGES[-1] - 1), bins=LENGTH_EDGES)[0]


@dataclass
class DecontamRecord:
    """What the mixture was decontaminated against."""

    enabled: bool
    folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    index: TestIndex | None = None

    def as_dict(self, cfg: InsConfig) -> dict[str, Any]:
        idx, dc = self.index, cfg.decontam
        digests = [sha256_file(p) for p in self.files]
        return {
            "enabled": self.enabled,
            "folders": [str(p) for p in self.folders],
            "test_files": [str(p) for p in self.files],
            "test_file_sha256": digests,
            # One fingerprint of the whole test set: sha256 of the sorted per-file sha256 lines.
            "test_set_sha256": set_sha256(digests),
            "test_tasks": idx.tasks if idx else [],
            "test_instances": idx.n_instances if idx else 0,
            "ngram": dc.ngram,
            "ngram_han": dc.ngram_han,
            "ngram_kana": dc.ngram_kana,
            "cjk_test_instances": idx.cjk_instances if idx else 0,
            "ignored_boilerplate_cjk_ngrams": idx.ignored_cjk_ngrams if idx else 0,
            "near": dc.near,
            "threshold": dc.threshold,
            "ignored_boilerplate_ngrams": idx.ignored_ngrams if idx else 0,
        }


def set_sha256(digests: Sequence[str]) -> str:
    """sha256 of the sorted lines ``<file sha256>\\n``: the same set of files gives the same value."""

    return sha256_text("".join(f"{d}\n" for d in sorted(digests)))


@dataclass
class BuildRecord:
    """Everything :func:`stats_of` reports."""

    cfg: InsConfig
    name: str
    version: str
    files: list[InputFile]
    skipped: list[str]
    validation_warnings: int
    states: dict[str, TaskState]
    targets: dict[str, int]
    decontam: DecontamRecord
    index_bytes: dict[str, int]
    shard_files: list[dict] = field(default_factory=list)
    hist_prompt: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_EDGES) - 1, np.int64))
    hist_target: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_EDGES) - 1, np.int64))
    paraphrased: int = 0


def _share(counter: Counter) -> dict[str, dict[str, float]]:
    total = sum(counter.values()) or 1
    return {k: {"n": v, "share": round(v / total, 6)} for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))}


def _task_row(st: TaskState, target: int) -> dict[str, Any]:
    f0 = st.files[0]  # a task's files may differ in category/source/language; the first file names the task
    c = st.counts
    return {
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
        "input": c["input"],
        "exact_duplicate": c["exact_duplicate"],
        "near_duplicate": c["near_duplicate"],
        "contaminated": c["contaminated"],
        "contamination": {"reasons": dict(sorted(st.contam.items())), "test_tasks": dict(sorted(st.contam_tasks.items())),
                          "examples": st.contam_examples},
        "clean": c["clean"],
        "target": target,
        "emitted": c["emitted"],
        "shots": {str(k): v for k, v in sorted(st.shots.items())},
    }


def _shares(states: dict[str, TaskState]) -> tuple[dict[str, Counter], dict[str, Counter], dict[str, list[str]]]:
    """Examples written and clean instances (before balancing) per task, category, source and language; licences."""
    after: dict[str, Counter] = {k: Counter() for k in ("task", "category", "source", "language")}
    before: dict[str, Counter] = {k: Counter() for k in ("task", "category", "source", "language")}
    licenses: dict[str, list[str]] = defaultdict(list)
    for tid, st in states.items():
        f0 = st.files[0]
        for key, name in (("task", tid), ("category", f0.category), ("source", f0.source), ("language", f0.language)):
            after[key][name] += st.counts["emitted"]
            before[key][name] += st.counts["clean"]
        for f in st.files:
            if tid not in licenses[f.license]:
                licenses[f.license].append(tid)
    return after, before, licenses


def _instructions(rec: BuildRecord, tasks: dict[str, Any], emitted: int) -> dict[str, Any]:
    defs = rec.cfg.instructions.definitions
    return {
        "original": emitted - rec.paraphrased,
        "paraphrase": rec.paraphrased,
        "definitions": str(defs) if defs else None,
        "tasks_with_paraphrases": sum(1 for t in tasks.values() if t["paraphrases"]),
        "distinct_paraphrases_used": sum(sum(1 for i in st.instructions if i >= 0) for st in rec.states.values()),
    }


def stats_of(rec: BuildRecord, out: Path) -> dict[str, Any]:
    """The ``stats.json`` of a build whose files are in ``out`` (shard sha256s are read from there)."""
    tasks = {tid: _task_row(st, rec.targets[tid]) for tid, st in rec.states.items()}
    after, before, licenses = _shares(rec.states)
    shots: Counter = Counter()
    for st in rec.states.values():
        shots.update(st.shots)

    def tot(key: str) -> int:
        return sum(t[key] for t in tasks.values())

    emitted = tot("emitted")
    keep_bytes = sum(a.nbytes for st in rec.states.values() for a in st.keep.values())
    return {
        "medsbench_version": rec.version,
        "name": rec.name,
        "seed": rec.cfg.seed,
        "config": rec.cfg.model_dump(mode="json"),
        "inputs": [{"path": str(f.path), "task_id": f.task_id, "origin": f.origin, "sha256": sha256_file(f.path)} for f in rec.files],
        "skipped_inputs": rec.skipped,
        "validation_warnings": rec.validation_warnings,
        "decontamination": rec.decontam.as_dict(rec.cfg),
        "totals": {
            "input": tot("input"), "exact_duplicate": tot("exact_duplicate"), "near_duplicate": tot("near_duplicate"),
            "contaminated": tot("contaminated"), "clean": tot("clean"), "examples": emitted, "tasks": len(tasks),
            "shards": len(rec.shard_files),
        },
        "instructions": _instructions(rec, tasks, emitted),
        "shots": {str(k): v for k, v in sorted(shots.items())},
        "shares": {k: _share(c) for k, c in after.items()},
        "shares_before_balancing": {k: _share(c) for k, c in before.items()},
        "licenses": {k: v for k, v in sorted(licenses.items())},
        "lengths": {"edges": LENGTH_EDGES, "prompt_chars": [int(x) for x in rec.hist_prompt],
                    "target_chars": [int(x) for x in rec.hist_target]},
        "indexes_bytes": {**rec.index_bytes, "keep_flags": keep_bytes},
        "shard_files": [{**s, "sha256": sha256_file(out / s["path"])} for s in rec.shard_files],
        "tasks": tasks,
    }
