"""Decontamination against every MedS-Bench test instance in the workspace.

A training example is dropped when its input

1. equals a test input after normalisation (``exact_input``; catches short items),
2. shares an n-gram of ``ngram`` tokens (default 13) with a test input (``ngram``), or
3. has a near-duplicate test input: MinHash LSH band collision at ``threshold`` (``near``).

The index is sized by the test sets only (never by the training data): per test
instance one 8-byte input digest and ``b`` 8-byte band hashes, and per distinct
test n-gram 8 bytes plus a 4-byte test-task index (for the report). n-grams that
occur in more than ``max_ngram_test_freq`` test instances are boilerplate (answer
option templates, fixed phrases) and are ignored; their number is reported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsbench.ins.config import DecontamConfig
from medsbench.ins.dedupe import Bander, Signer, digests, normalise, rolling, token_hashes, tokens
from medsbench.tasks.format import iter_instances, read_meta, task_id_of

REASONS = ("exact_input", "ngram", "near")
CHUNK = 4096


def _lookup(keys: np.ndarray, payload: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(keys) or not len(q):
        return np.zeros(len(q), dtype=bool), np.zeros(len(q), dtype=np.int64)
    pos = np.searchsorted(keys, q)
    pos[pos == len(keys)] = 0
    hit = keys[pos] == q
    return hit, payload[pos]


def _index(values: list[np.ndarray], owners: list[np.ndarray], max_freq: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Sorted unique keys with the task index of their first occurrence; drops too-frequent keys."""
    if not values:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint32), 0
    v = np.concatenate(values)
    o = np.concatenate(owners)
    keys, first, counts = np.unique(v, return_index=True, return_counts=True)
    payload = o[first].astype(np.uint32)
    dropped = 0
    if max_freq is not None:
        keep = counts <= max_freq
        dropped = int((~keep).sum())
        keys, payload = keys[keep], payload[keep]
    return keys, payload, dropped


@dataclass
class TestIndex:
    """Fingerprints of the benchmark test inputs."""

    cfg: DecontamConfig
    files: list[Path] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    n_instances: int = 0
    input_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    input_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    ngram_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    ngram_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    band_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    band_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    ignored_ngrams: int = 0
    signer: Signer | None = None
    bander: Bander | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.input_keys, self.input_task, self.ngram_keys, self.ngram_task, self.band_keys, self.band_task))

    @classmethod
    def build(cls, files: Sequence[str | os.PathLike], cfg: DecontamConfig, signer: Signer | None) -> TestIndex:
        idx = cls(cfg=cfg, signer=signer if cfg.near else None)
        if idx.signer is not None:
            idx.bander = Bander(threshold=cfg.threshold, num_perm=signer.num_perm)
        task_pos: dict[str, int] = {}
        inp_v, inp_o, ng_v, ng_o, bd_v, bd_o = [], [], [], [], [], []
        for f in files:
            path = Path(f)
            tid = task_id_of(read_meta(path), path) or path.stem
            t = task_pos.setdefault(tid, len(task_pos))
            idx.files.append(path)
            batch: list[str] = []
            for inst in iter_instances(path):
                if isinstance(inst.input, str):
                    batch.append(inst.input)
                if len(batch) >= CHUNK:
                    idx._add(batch, t, inp_v, inp_o, ng_v, ng_o, bd_v, bd_o)
                    batch = []
            if batch:
                idx._add(batch, t, inp_v, inp_o, ng_v, ng_o, bd_v, bd_o)
        idx.tasks = list(task_pos)
        idx.input_keys, idx.input_task, _ = _index(inp_v, inp_o, None)
        idx.ngram_keys, idx.ngram_task, idx.ignored_ngrams = _index(ng_v, ng_o, cfg.max_ngram_test_freq)
        idx.band_keys, idx.band_task, _ = _index(bd_v, bd_o, None)
        return idx

    def _add(self, texts, t, inp_v, inp_o, ng_v, ng_o, bd_v, bd_o) -> None:
        n = len(texts)
        self.n_instances += n
        inp_v.append(digests([normalise(x) for x in texts]))
        inp_o.append(np.full(n, t, np.uint32))
        toks = [tokens(x) for x in texts]
        lengths = np.fromiter((len(x) for x in toks), dtype=np.int64, count=n)
        th = token_hashes([w for x in toks for w in x])
        h, own = rolling(th, lengths, self.cfg.ngram)
        # Count each n-gram once per test instance, so the frequency cut counts instances.
        pair = np.unique(np.stack([own.astype(np.uint64), h], axis=1), axis=0) if len(h) else np.zeros((0, 2), np.uint64)
        ng_v.append(pair[:, 1])
        ng_o.append(np.full(len(pair), t, np.uint32))
        if self.signer is not None:
            sigs, active = self.signer.signatures(th, lengths)
            bands = self.bander.bands(sigs[active]).ravel()
            bd_v.append(bands)
            bd_o.append(np.full(len(bands), t, np.uint32))

    def check(
        self, texts: Sequence[str], th: np.ndarray, lengths: np.ndarray, sigs: np.ndarray | None, active: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per item: reason code (-1 clean, else index into REASONS) and matched test task index."""
        n = len(texts)
        reason = np.full(n, -1, dtype=np.int8)
        task = np.zeros(n, dtype=np.int64)
        if self.n_instances == 0 or n == 0:
            return reason, task
        hit, pay = _lookup(self.input_keys, self.input_task, digests([normalise(x) for x in texts]))
        reason[hit], task[hit] = 0, pay[hit]
        h, own = rolling(th, lengths, self.cfg.ngram)
        hit, pay = _lookup(self.ngram_keys, self.ngram_task, h)
        if hit.any():
            # The first matching n-gram of each item names its test task.
            o, first = np.unique(own[hit], return_index=True)
            fresh = reason[o] < 0
            reason[o[fresh]] = 1
            task[o[fresh]] = pay[hit][first][fresh]
        if self.bander is not None and sigs is not None and len(self.band_keys):
            todo = np.nonzero((reason < 0) & active)[0]
            if len(todo):
                bands = self.bander.bands(sigs[todo])
                hit, pay = _lookup(self.band_keys, self.band_task, bands.ravel())
                hit2 = hit.reshape(bands.shape)
                rows = hit2.any(axis=1)
                first_col = hit2.argmax(axis=1)
                pay2 = pay.reshape(bands.shape)
                sel = todo[rows]
                reason[sel] = 2
                task[sel] = pay2[rows, first_col[rows]]
        return reason, task
