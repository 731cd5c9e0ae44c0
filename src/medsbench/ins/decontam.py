"""Decontamination against every MedS-Bench test instance in the workspace.

A training example is dropped when its input

1. equals a test input after normalisation (``exact_input``; catches short items),
2. shares an n-gram of ``ngram`` tokens (default 13) with a test input (``ngram``), or
3. has a near-duplicate test input: MinHash LSH band collision at ``threshold`` (``near``).

n-grams are script-aware (``dedupe.script_class``). Inputs mostly in CJK script
(tokens are single characters there) use longer n-grams: ``ngram_han`` characters
for Han-only text (Chinese), ``ngram_kana`` for text with kana or Hangul
(Japanese, Korean). A CJK training input is checked with its class's size against
the test inputs that contain CJK characters (indexed at both sizes) and with
``ngram`` against the ``ngram``-grams of test inputs without any CJK character
(an English passage copied into it is still caught). A Latin-script training input is checked exactly as before
the CJK sizes existed: ``ngram``-grams against every test input.

The index is sized by the test sets only (never by the training data): per test
instance one 8-byte input digest and ``b`` 8-byte band hashes, and per distinct
test n-gram 8 bytes plus a 4-byte test-task index (for the report). n-grams that
occur in more than ``max_ngram_test_freq`` test instances are boilerplate (answer
option templates, fixed phrases) and are ignored; their number is reported.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsbench.ins.config import DecontamConfig
from medsbench.ins.dedupe import (
    LATIN,
    Bander,
    Signer,
    digests,
    has_cjk,
    normalise,
    rolling,
    script_classes,
    subset,
    token_hashes,
    tokens,
)
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


def _per_instance(h: np.ndarray, own: np.ndarray) -> np.ndarray:
    """(owner, hash) pairs with each n-gram once per test instance, so the frequency cut counts instances."""
    if not len(h):
        return np.zeros((0, 2), np.uint64)
    return np.unique(np.stack([own.astype(np.uint64), h], axis=1), axis=0)


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
    ngram_latin: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # key occurs in a test input without CJK
    cjk_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # test inputs with CJK, both CJK sizes
    cjk_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    band_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    band_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    ignored_ngrams: int = 0
    ignored_cjk_ngrams: int = 0
    cjk_instances: int = 0  # test inputs with any CJK character (indexed at the CJK sizes too)
    signer: Signer | None = None
    bander: Bander | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.input_keys, self.input_task, self.ngram_keys, self.ngram_task, self.ngram_latin,
                                      self.cjk_keys, self.cjk_task, self.band_keys, self.band_task))

    def cjk_size(self, cls: int) -> int:
        return self.cfg.ngram_kana if cls == 2 else self.cfg.ngram_han

    @classmethod
    def build(cls, files: Sequence[str | os.PathLike], cfg: DecontamConfig, signer: Signer | None) -> TestIndex:
        idx = cls(cfg=cfg, signer=signer if cfg.near else None)
        if idx.signer is not None:
            idx.bander = Bander(threshold=cfg.threshold, num_perm=signer.num_perm)
        task_pos: dict[str, int] = {}
        acc: dict[str, list[np.ndarray]] = defaultdict(list)  # per-chunk arrays, concatenated at the end
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
                    idx._add(batch, t, acc)
                    batch = []
            if batch:
                idx._add(batch, t, acc)
        idx.tasks = list(task_pos)
        idx.input_keys, idx.input_task, _ = _index(acc["inp_v"], acc["inp_o"], None)
        idx.ngram_keys, idx.ngram_task, idx.ignored_ngrams = _index(acc["ng_v"], acc["ng_o"], cfg.max_ngram_test_freq)
        latin = np.unique(np.concatenate(acc["latin"])) if acc["latin"] else np.zeros(0, np.uint64)
        idx.ngram_latin = np.isin(idx.ngram_keys, latin)
        idx.cjk_keys, idx.cjk_task, idx.ignored_cjk_ngrams = _index(acc["cj_v"], acc["cj_o"], cfg.max_ngram_test_freq)
        idx.band_keys, idx.band_task, _ = _index(acc["bd_v"], acc["bd_o"], None)
        return idx

    def _add(self, texts: list[str], t: int, acc: dict[str, list[np.ndarray]]) -> None:
        n = len(texts)
        self.n_instances += n
        acc["inp_v"].append(digests([normalise(x) for x in texts]))
        acc["inp_o"].append(np.full(n, t, np.uint32))
        toks = [tokens(x) for x in texts]
        lengths = np.fromiter((len(x) for x in toks), dtype=np.int64, count=n)
        th = token_hashes([w for x in toks for w in x])
        # Test inputs with any CJK character are indexed at the CJK sizes too; only n-grams of inputs
        # without one count for a CJK training input's ``ngram``-grams.
        cjk = np.fromiter((has_cjk(x) for x in texts), dtype=bool, count=n)
        h, own = rolling(th, lengths, self.cfg.ngram)
        pair = _per_instance(h, own)
        acc["ng_v"].append(pair[:, 1])
        acc["ng_o"].append(np.full(len(pair), t, np.uint32))
        acc["latin"].append(pair[~cjk[pair[:, 0].astype(np.int64)], 1])
        self.cjk_instances += int(cjk.sum())
        if cjk.any():
            sth, slen, _ = subset(th, lengths, cjk)
            for size in sorted({self.cfg.ngram_han, self.cfg.ngram_kana}):
                pair = _per_instance(*rolling(sth, slen, size))
                acc["cj_v"].append(pair[:, 1])
                acc["cj_o"].append(np.full(len(pair), t, np.uint32))
        if self.signer is not None:
            sigs, active = self.signer.signatures(th, lengths)
            bands = self.bander.bands(sigs[active]).ravel()
            acc["bd_v"].append(bands)
            acc["bd_o"].append(np.full(len(bands), t, np.uint32))

    def check(
        self, texts: Sequence[str], th: np.ndarray, lengths: np.ndarray, sigs: np.ndarray | None, active: np.ndarray | None,
        classes: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per item: reason code (-1 clean, else index into REASONS) and matched test task index.

        ``classes`` are the items' script classes (``dedupe.script_classes``); computed here when omitted.
        """
        n = len(texts)
        reason = np.full(n, -1, dtype=np.int8)
        task = np.zeros(n, dtype=np.int64)
        if self.n_instances == 0 or n == 0:
            return reason, task
        if classes is None:
            classes = script_classes(texts, [tokens(x) for x in texts])
        hit, pay = _lookup(self.input_keys, self.input_task, digests([normalise(x) for x in texts]))
        reason[hit], task[hit] = 0, pay[hit]
        h, own = rolling(th, lengths, self.cfg.ngram)
        pos = np.searchsorted(self.ngram_keys, h) if len(self.ngram_keys) else np.zeros(len(h), np.int64)
        pos[pos == len(self.ngram_keys)] = 0
        hit = (self.ngram_keys[pos] == h) if len(self.ngram_keys) else np.zeros(len(h), bool)
        # A CJK item's ``ngram``-grams count only where they occur in a test input without CJK characters.
        hit &= (classes[own] == LATIN) | (self.ngram_latin[pos] if len(self.ngram_latin) else False)
        pay = self.ngram_task[pos] if len(self.ngram_task) else np.zeros(len(h), np.uint32)
        self._mark(reason, task, hit, pay, own)
        cjk = classes != LATIN
        if cjk.any() and len(self.cjk_keys):
            sth, slen, back = subset(th, lengths, cjk)
            scls = classes[cjk]
            for cls in np.unique(scls):
                m = scls == cls
                cth, clen, cback = subset(sth, slen, m)
                h, own = rolling(cth, clen, self.cjk_size(int(cls)))
                hit, pay = _lookup(self.cjk_keys, self.cjk_task, h)
                self._mark(reason, task, hit, pay, back[cback[own]])
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

    def check_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`check` from raw input texts (tokenised and signed here); for reports and tests."""
        toks = [tokens(x) for x in texts]
        lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
        th = token_hashes([w for t in toks for w in t])
        sigs, active = self.signer.signatures(th, lengths) if self.signer is not None else (None, None)
        return self.check(texts, th, lengths, sigs, active, script_classes(texts, toks))

    @staticmethod
    def _mark(reason: np.ndarray, task: np.ndarray, hit: np.ndarray, pay: np.ndarray, own: np.ndarray) -> None:
        """Reason ``ngram`` for items with a hit; the first matching n-gram of each item names its test task."""
        if not hit.any():
            return
        o, first = np.unique(own[hit], return_index=True)
        fresh = reason[o] < 0
        reason[o[fresh]] = 1
        task[o[fresh]] = pay[hit][first][fresh]
