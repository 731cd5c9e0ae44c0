"""Pass 1 of the MedS-Ins build: which instances are clean (exact dedupe, decontamination, near dedupe).

Split in two so the expensive part runs in worker processes:

* :func:`fingerprint` (pure, per chunk of instances, in a worker): the exact-dedupe
  key digests, the decontamination verdict of every input against the
  benchmark test index (``decontam.TestIndex``), and the MinHash LSH bands of
  every example for near-dedupe;
* :class:`Screener` (in the building process, in task and file order): the
  order-dependent decisions, i.e. the first occurrence of a key or of a
  near-duplicate group is kept, contamination is counted with its examples.

A verdict depends only on the instance and the items before it in task order,
never on how chunks were spread over workers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsbench.errors import MedsbenchError
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
from medsbench.ins.inputs import InputFile
from medsbench.ins.mixer import Reservoir
from medsbench.tasks.format import Instance

CONTAM_EXAMPLES = 10  # per task, in the report


@dataclass
class TaskState:
    """Everything the build learns about one task (its files, counts, clean flags, demo pool)."""

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


@dataclass(frozen=True)
class ScreenSettings:
    """What every worker needs for :func:`fingerprint` (sent once, when the worker starts)."""

    cfg: InsConfig
    test: Path | None  # folder of the saved test index (``TestIndex.save``), mapped by each worker
    signer: Signer | None
    bander: Bander | None  # near dedupe's banding (None: near dedupe off)


@dataclass(frozen=True)
class ChunkJob:
    settings: ScreenSettings
    definition: str  # the task's normalised definition (part of the "example" dedupe key)
    inputs: list[str]
    targets: list[str]


@dataclass
class Fingerprints:
    """Per item of a chunk: exact key digest, decontamination verdict, near-dedupe bands."""

    keys: np.ndarray | None
    reason: np.ndarray | None  # -1 clean, else index into decontam.REASONS
    test_task: np.ndarray | None
    bands: np.ndarray | None  # (items, b)
    active: np.ndarray | None  # item has any shingle


_INDEXES: dict[Path, TestIndex] = {}  # per process: the test index, mapped once from its folder


def forget_indexes() -> None:
    """Drop this process's mapped test index (before its folder is removed)."""
    _INDEXES.clear()


def _index(folder: Path | None) -> TestIndex | None:
    if folder is None:
        return None
    if folder not in _INDEXES:
        _INDEXES.clear()
        _INDEXES[folder] = TestIndex.load(folder)
    return _INDEXES[folder]


def exact_key(k: str, definition: str, inp: str, target: str) -> str:
    if k == "input":
        return normalise(inp)
    if k == "input_output":
        return f"{normalise(inp)}\x1f{normalise(target)}"
    return f"{definition}\x1f{normalise(inp)}\x1f{normalise(target)}"


def fingerprint(job: ChunkJob) -> Fingerprints:
    """The order-independent part of screening one chunk (runs in a worker; see the module docstring)."""
    s = job.settings
    d = s.cfg.dedupe
    keys = digests([exact_key(d.key, job.definition, i, t) for i, t in zip(job.inputs, job.targets)]) if d.exact else None
    test = _index(s.test)
    test = test if test is not None and test.n_instances else None
    if test is None and s.bander is None:
        return Fingerprints(keys, None, None, None, None)
    toks = [tokens(x) for x in job.inputs]
    lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
    th = token_hashes([w for t in toks for w in t])
    sigs = active = None
    if s.signer is not None:
        sigs, active = s.signer.signatures(th, lengths)
    reason = task = None
    if test is not None:
        reason, task = test.check(job.inputs, th, lengths, sigs, active, script_classes(job.inputs, toks))
    bands = None
    if s.bander is not None:
        assert s.signer is not None and sigs is not None and active is not None  # near dedupe makes a signer
        if d.key != "input":
            otoks = [tokens(t) for t in job.targets]
            olen = np.fromiter((len(t) for t in otoks), dtype=np.int64, count=len(otoks))
            osigs, oact = s.signer.signatures(Signer.salt_output(token_hashes([w for t in otoks for w in t])), olen)
            sigs, active = np.minimum(sigs, osigs), active | oact
        bands = s.bander.bands(sigs)
    return Fingerprints(keys, reason, task, bands, active)


def check_instance(inst: Instance, index: int, path: Path) -> None:
    if not isinstance(inst.input, str):
        raise MedsbenchError(f"input: expected a string, got {type(inst.input).__name__}", where=f"{path}:{index}")
    out = inst.output
    if not isinstance(out, list) or not out or not all(isinstance(o, str) for o in out):
        raise MedsbenchError("output: expected a string or a non-empty list of strings", where=f"{path}:{index}")


class Screener:
    """The order-dependent half of pass 1: applies a chunk's :class:`Fingerprints` to the dedupe state."""

    def __init__(self, cfg: InsConfig, test: TestIndex | None) -> None:
        self.cfg = cfg
        self.exact = ExactDeduper() if cfg.dedupe.exact else None
        self.test = test
        self.near = NearDeduper() if cfg.dedupe.near else None

    def apply(self, state: TaskState, f: InputFile, chunk: list[Instance], fp: Fingerprints) -> np.ndarray:
        """Keep flags of one chunk; counts and contamination examples go to ``state``."""
        n = len(chunk)
        c = state.counts
        c["input"] += n
        keep = np.ones(n, dtype=bool)
        if self.exact is not None:
            assert fp.keys is not None
            dup = self.exact.check(fp.keys)
            c["exact_duplicate"] += int(dup.sum())
            keep &= ~dup
        idx = np.nonzero(keep)[0]
        if fp.reason is not None and fp.test_task is not None and len(idx):
            idx = self._decontaminate(state, f, chunk, fp, keep, idx)
        if self.near is not None and fp.bands is not None and fp.active is not None and len(idx):
            group = digest(normalise(state.original)) if self.cfg.dedupe.key == "example" else 0
            act = idx[fp.active[idx]]
            dup = self.near.check(fp.bands[act], np.full(len(act), group, dtype=np.uint64))
            c["near_duplicate"] += int(dup.sum())
            keep[act[dup]] = False
        c["clean"] += int(keep.sum())
        return keep

    def _decontaminate(self, state: TaskState, f: InputFile, chunk: list[Instance], fp: Fingerprints,
                       keep: np.ndarray, idx: np.ndarray) -> np.ndarray:
        assert self.test is not None and fp.reason is not None and fp.test_task is not None
        reason = fp.reason[idx]
        bad = reason >= 0
        for j in np.nonzero(bad)[0]:
            why, tt = REASONS[reason[j]], self.test.tasks[fp.test_task[idx[j]]]
            state.contam[why] += 1
            state.contam_tasks[tt] += 1
            if len(state.contam_examples) < CONTAM_EXAMPLES:
                state.contam_examples.append({"id": chunk[idx[j]].id, "reason": why, "test_task": tt, "file": str(f.path)})
        state.counts["contaminated"] += int(bad.sum())
        keep[idx[bad]] = False
        return idx[~bad]

    @property
    def index_bytes(self) -> dict[str, int]:
        return {
            "exact_dedupe": self.exact.seen.nbytes if self.exact else 0,
            "near_dedupe": self.near.seen.nbytes if self.near else 0,
            "decontam": self.test.nbytes if self.test else 0,
        }
