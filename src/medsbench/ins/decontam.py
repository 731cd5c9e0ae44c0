"""Decontamination: the rule that says a training text overlaps a benchmark test instance.

The rule (:func:`overlap` for one pair, :class:`TestIndex` for a whole test set;
``medsbench ins build`` and any later check of a run's items use exactly this
code). A text is contaminated by a test input when

1. both are equal after normalisation (case-folded, whitespace collapsed:
   ``dedupe.normalise``; reason ``exact_input``, catches short items),
2. they share an n-gram of ``ngram`` tokens (default 13; reason ``ngram``), or
3. they are near-duplicates: a MinHash LSH band collision at Jaccard
   ``threshold`` over word shingles (reason ``near``; only with ``near`` on).

Tokens are words (unicode ``\\w`` runs) with every CJK character a token of its
own (``dedupe.tokens``). n-grams are script-aware (``dedupe.script_class``):
a text mostly in CJK script uses longer n-grams, ``ngram_han`` characters for
Han-only text (Chinese) and ``ngram_kana`` for text with kana or Hangul
(Japanese, Korean), against the test inputs that contain CJK characters
(indexed at both sizes); its ``ngram``-grams count only against test inputs
without any CJK character (an English passage copied into it is still
caught). A Latin-script text is checked with ``ngram``-grams against every test
input. Over a whole test set, n-grams found in more than
``max_ngram_test_freq`` test instances are boilerplate (answer-option
templates, fixed phrases) and are ignored; their number is reported.

The index is sized by the test sets only (never by the training data): per test
instance one 8-byte input digest and ``b`` 8-byte band hashes, and per distinct
test n-gram 8 bytes plus a 4-byte test-task index (for the report). It is built
file by file (:func:`file_parts`, a pure function that worker processes run)
and merged in file order, so the index does not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsbench.ins.config import DecontamConfig, DedupeConfig
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
import pickle

REASONS = ("exact_input", "ngram", "near")
CHUNK = 4096


def presence_table(keys: np.ndarray) -> np.ndarray:
    """A bool table indexed by the top bits of a key, True where some key has them: at most 1/8 full
    (<= 32 MB), so most absent keys are ruled out by one look-up instead of a binary search."""
    bits = int(min(25, max(16, np.ceil(np.log2(max(1, len(keys)) * 8)))))
    table = np.zeros(1 << bits, dtype=bool)
    table[(keys >> np.uint64(64 - bits)).astype(np.intp)] = True
    return table


def _find(keys: np.ndarray, q: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit, position in ``keys``) of each query; ``table`` from :func:`presence_table` of ``keys``."""
    hit = np.zeros(len(q), dtype=bool)
    pos = np.zeros(len(q), dtype=np.int64)
    if not len(keys) or not len(q):
        return hit, pos
    shift = np.uint64(64 - int(np.log2(len(table))))
    cand = np.flatnonzero(table[(q >> shift).astype(np.intp)])
    p = np.searchsorted(keys, q[cand])
    p[p == len(keys)] = 0
    hit[cand[keys[p] == q[cand]]] = True
    pos[cand] = p
    return hit, pos


def _positions(keys: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit, position in the sorted ``keys``) of each query."""
    if not len(keys) or not len(q):
        return np.zeros(len(q), dtype=bool), np.zeros(len(q), dtype=np.int64)
    pos = np.searchsorted(keys, q)
    pos[pos == len(keys)] = 0
    return keys[pos] == q, pos


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


def owned_fingerprints(texts: Sequence[str], cfg: DecontamConfig, signer: Signer | None,
                       bander: Bander | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every index key of each test input, as (input position, key) per kind, each key once per input.

    Kinds: ``inp`` (the normalised input's digest), ``ng`` (``ngram``-grams), ``cj`` (the CJK-size
    n-grams of inputs with a CJK character, both sizes), ``bd`` (LSH bands, with near-duplicates on);
    and ``cjk``: (positions of the inputs with a CJK character, their positions again). The index
    (:class:`TestIndex`) is made of these keys; a run's contamination check maps keys back to items.
    """
    n = len(texts)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pos = np.arange(n, dtype=np.int64)
    out["inp"] = (pos, digests([normalise(x) for x in texts]))
    toks = [tokens(x) for x in texts]
    lengths = np.fromiter((len(x) for x in toks), dtype=np.int64, count=n)
    th = token_hashes([w for x in toks for w in x])
    # Test inputs with any CJK character are indexed at the CJK sizes too; only n-grams of inputs
    # without one count for a CJK training input's ``ngram``-grams.
    cjk = np.fromiter((has_cjk(x) for x in texts), dtype=bool, count=n)
    out["cjk"] = (pos[cjk], pos[cjk])
    pair = _per_instance(*rolling(th, lengths, cfg.ngram))
    out["ng"] = (pair[:, 0].astype(np.int64), pair[:, 1])
    owners, keys = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    if cjk.any():
        sth, slen, back = subset(th, lengths, cjk)
        for size in sorted({cfg.ngram_han, cfg.ngram_kana}):
            pair = _per_instance(*rolling(sth, slen, size))
            owners.append(back[pair[:, 0].astype(np.int64)])
            keys.append(pair[:, 1])
    out["cj"] = (np.concatenate(owners), np.concatenate(keys))
    if signer is not None and bander is not None:
        sigs, active = signer.signatures(th, lengths)
        bands = bander.bands(sigs[active])
        out["bd"] = (np.repeat(pos[active], bands.shape[1]), bands.ravel())
    return out


def _fingerprints(texts: list[str], cfg: DecontamConfig, signer: Signer | None, bander: Bander | None) -> dict[str, list[np.ndarray]]:
    """Index arrays of one chunk of test inputs: input digests, n-grams (per instance), CJK n-grams, bands."""
    owned = owned_fingerprints(texts, cfg, signer, bander)
    cjk = np.zeros(len(texts), dtype=bool)
    cjk[owned["cjk"][0]] = True
    own, ng = owned["ng"]
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    out["inp"].append(owned["inp"][1])
    out["cjk_n"].append(np.array([cjk.sum()], np.int64))
    out["ng"].append(ng)
    out["latin"].append(ng[~cjk[own]])
    if len(owned["cj"][1]):
        out["cj"].append(owned["cj"][1])
    if "bd" in owned:
        out["bd"].append(owned["bd"][1])
    return out


@dataclass(frozen=True)
class FileJob:
    """One test file to fingerprint (``file_parts``), with the settings every worker needs."""

    path: Path
    cfg: DecontamConfig
    signer: Signer | None
    bander: Bander | None


def _batches(texts: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _fingerprint_all(texts: Iterable[str], cfg: DecontamConfig, signer: Signer | None, bander: Bander | None) -> tuple[int, dict[str, np.ndarray]]:
    acc: dict[str, list[np.ndarray]] = defaultdict(list)
    n = 0
    for batch in _batches(texts):
        n += len(batch)
        for k, v in _fingerprints(batch, cfg, signer, bander).items():
            acc[k].extend(v)
    return n, {k: np.concatenate(v) for k, v in acc.items() if v}


def file_parts(job: FileJob) -> tuple[int, dict[str, np.ndarray]]:
    """(instances, index arrays) of one test file: a pure function of the file and the settings."""
    texts = (inst.input for inst in iter_instances(job.path) if isinstance(inst.input, str))
    return _fingerprint_all(texts, job.cfg, job.signer, job.bander)


@dataclass(frozen=True)
class Contamination:
    """Why a text is contaminated: the reason (one of ``REASONS``) and the test task it overlaps."""

    reason: str
    test_task: str


@dataclass
class TestIndex:
    """Fingerprints of the benchmark test inputs (the rule is in the module docstring)."""

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
    _ngram_table: np.ndarray | None = field(default=None, repr=False)  # presence_table(ngram_keys), made on first use

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.input_keys, self.input_task, self.ngram_keys, self.ngram_task, self.ngram_latin,
                                      self.cjk_keys, self.cjk_task, self.band_keys, self.band_task))

    def cjk_size(self, cls: int) -> int:
        return self.cfg.ngram_kana if cls == 2 else self.cfg.ngram_han

    @classmethod
    def empty(cls, cfg: DecontamConfig, signer: Signer | None) -> TestIndex:
        idx = cls(cfg=cfg, signer=signer if cfg.near else None)
        if idx.signer is not None:
            idx.bander = Bander(threshold=cfg.threshold, num_perm=idx.signer.num_perm)
        return idx

    @classmethod
    def build(
        cls, files: Sequence[str | os.PathLike], cfg: DecontamConfig, signer: Signer | None,
        mapper: Callable[[Callable[[FileJob], tuple[int, dict[str, np.ndarray]]], Iterable[FileJob]], Iterable] = map,
    ) -> TestIndex:
        """The index of every test input in ``files`` (``mapper``: ``map`` or ``Workers.map``; same result)."""
        idx = cls.empty(cfg, signer)
        paths = [Path(f) for f in files]
        tids = [task_id_of(read_meta(p), p) or p.stem for p in paths]
        parts = mapper(file_parts, (FileJob(p, cfg, idx.signer, idx.bander) for p in paths))
        idx._merge(paths, tids, parts)
        return idx

    @classmethod
    def from_texts(cls, items: Iterable[tuple[str, str]], cfg: DecontamConfig | None = None, signer: Signer | None = None) -> TestIndex:
        """The index of ``(test task, test input)`` pairs held in memory (e.g. a run's items)."""
        cfg = cfg or DecontamConfig()
        if signer is None and cfg.near:
            d = DedupeConfig()
            signer = Signer(num_perm=d.num_perm, shingle=d.shingle)
        idx = cls.empty(cfg, signer)
        by_task: dict[str, list[str]] = {}
        for task, text in items:
            by_task.setdefault(task, []).append(text)
        parts = [_fingerprint_all(texts, cfg, idx.signer, idx.bander) for texts in by_task.values()]
        idx._merge([], list(by_task), parts)
        return idx

    _ARRAYS = ("input_keys", "input_task", "ngram_keys", "ngram_task", "ngram_latin", "cjk_keys", "cjk_task",
               "band_keys", "band_task")

    def save(self, folder: Path) -> None:
        """Write the index into ``folder`` (one ``.npy`` per array and the rest pickled) for :meth:`load`."""

        folder.mkdir(parents=True, exist_ok=True)
        for name in self._ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))
        rest = {k: v for k, v in self.__dict__.items() if k not in self._ARRAYS and k != "_ngram_table"}
        (folder / "rest.pickle").write_bytes(pickle.dumps(rest))

    @classmethod
    def load(cls, folder: Path) -> TestIndex:
        """An index saved by :meth:`save` in this build, its arrays memory-mapped (worker processes share
        the pages instead of each holding a copy)."""

        rest = pickle.loads((folder / "rest.pickle").read_bytes())  # written by save() in the same build
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in cls._ARRAYS}
        return cls(**rest, **arrays)

    def _merge(self, paths: list[Path], tids: list[str], parts: Iterable[tuple[int, dict[str, np.ndarray]]]) -> None:
        """Concatenate per-file arrays in file order and build the sorted lookup tables."""
        task_pos: dict[str, int] = {}
        acc: dict[str, list[np.ndarray]] = defaultdict(list)
        owners: dict[str, list[np.ndarray]] = defaultdict(list)
        for tid, (n, arrays) in zip(tids, parts):
            t = task_pos.setdefault(tid, len(task_pos))
            self.n_instances += n
            self.cjk_instances += int(arrays.get("cjk_n", np.zeros(0, np.int64)).sum())
            for k in ("inp", "ng", "latin", "cj", "bd"):
                v = arrays.get(k, np.zeros(0, np.uint64))
                acc[k].append(v)
                owners[k].append(np.full(len(v), t, np.uint32))
        self.files = paths
        self.tasks = list(task_pos)
        freq = self.cfg.max_ngram_test_freq
        self.input_keys, self.input_task, _ = _index(acc["inp"], owners["inp"], None)
        self.ngram_keys, self.ngram_task, self.ignored_ngrams = _index(acc["ng"], owners["ng"], freq)
        latin = np.unique(np.concatenate(acc["latin"])) if acc["latin"] else np.zeros(0, np.uint64)
        self.ngram_latin = np.isin(self.ngram_keys, latin)
        self.cjk_keys, self.cjk_task, self.ignored_cjk_ngrams = _index(acc["cj"], owners["cj"], freq)
        self.band_keys, self.band_task, _ = _index(acc["bd"], owners["bd"], None)

    def hits(
        self, texts: Sequence[str], th: np.ndarray, lengths: np.ndarray, classes: np.ndarray,
    ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """The index keys the texts hit under the rule (exact input, script-aware n-grams), as
        ``(kind, positions in that kind's key table, text index of each hit)``, in rule order:

        ``exact_input`` (``input_keys``); ``ngram`` (``ngram_keys``, hit by Latin-script texts);
        ``ngram_cjk_text`` (``ngram_keys`` hit by a CJK text: only keys found in a test input without
        CJK characters, and they count only against such inputs); ``cjk`` (``cjk_keys``). Near-duplicate
        bands are :meth:`near_hits`.
        """
        hit, pos = _positions(self.input_keys, digests([normalise(x) for x in texts]))
        yield "exact_input", pos[hit], np.nonzero(hit)[0]
        h, own = rolling(th, lengths, self.cfg.ngram)
        if self._ngram_table is None:
            self._ngram_table = presence_table(self.ngram_keys)
        hit, pos = _find(self.ngram_keys, h, self._ngram_table)
        latin = classes[own] == LATIN
        yield "ngram", pos[hit & latin], own[hit & latin]
        # A CJK text's ``ngram``-grams count only where they occur in a test input without CJK characters.
        cjk_hit = hit & ~latin & (self.ngram_latin[pos] if len(self.ngram_latin) else False)
        yield "ngram_cjk_text", pos[cjk_hit], own[cjk_hit]
        cjk = classes != LATIN
        if cjk.any() and len(self.cjk_keys):
            sth, slen, back = subset(th, lengths, cjk)
            scls = classes[cjk]
            for cls in np.unique(scls):
                m = scls == cls
                cth, clen, cback = subset(sth, slen, m)
                h, own = rolling(cth, clen, self.cjk_size(int(cls)))
                hit, pos = _positions(self.cjk_keys, h)
                yield "cjk", pos[hit], back[cback[own[hit]]]

    def near_hits(self, sigs: np.ndarray | None, active: np.ndarray | None,
                  todo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``band_keys``, text index) of the LSH band collisions of the texts ``todo``
        (indexes into ``sigs``), row by row and band by band; empty without near-duplicate search."""
        if self.bander is None or sigs is None or active is None or not len(self.band_keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        todo = todo[active[todo]]
        if not len(todo):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        bands = self.bander.bands(sigs[todo])
        hit, pos = _positions(self.band_keys, bands.ravel())
        own = np.repeat(todo, bands.shape[1])
        return pos[hit], own[hit]

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
        payload = {"exact_input": self.input_task, "ngram": self.ngram_task, "ngram_cjk_text": self.ngram_task,
                   "cjk": self.cjk_task}
        for kind, pos, own in self.hits(texts, th, lengths, classes):
            self._mark(reason, task, 0 if kind == "exact_input" else 1, payload[kind][pos], own)
        pos, own = self.near_hits(sigs, active, np.nonzero(reason < 0)[0])
        self._mark(reason, task, 2, self.band_task[pos], own)
        return reason, task

    def check_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`check` from raw input texts (tokenised and signed here); for reports and tests."""
        toks = [tokens(x) for x in texts]
        lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
        th = token_hashes([w for t in toks for w in t])
        sigs, active = self.signer.signatures(th, lengths) if self.signer is not None else (None, None)
        return self.check(texts, th, lengths, sigs, active, script_classes(texts, toks))

    def contaminated(self, text: str) -> Contamination | None:
        """The rule for one text: why it overlaps a test input of this index, or None when it is clean."""
        reason, task = self.check_texts([text])
        if reason[0] < 0:
            return None
        return Contamination(REASONS[int(reason[0])], self.tasks[int(task[0])])

    @staticmethod
    def _mark(reason: np.ndarray, task: np.ndarray, code: int, pay: np.ndarray, own: np.ndarray) -> None:
        """Reason ``code`` for the texts ``own`` not yet marked; the first hit of each names its test task."""
        if not len(own):
            return
        o, first = np.unique(own, return_index=True)
        fresh = reason[o] < 0
        reason[o[fresh]] = code
        task[o[fresh]] = pay[first][fresh]


def overlap(text: str, test_text: str, cfg: DecontamConfig | None = None) -> str | None:
    """The decontamination rule for one pair: the reason ``text`` overlaps ``test_text``, or None.

    Reasons, checked in this order: ``"exact_input"`` (equal after normalisation),
    ``"ngram"`` (a shared script-aware n-gram), ``"near"`` (MinHash near-duplicate,
    with ``cfg.near``). The boilerplate cut of a whole test set (``max_ngram_test_freq``)
    never applies to a single pair. Pure: the same inputs always give the same answer.

    >>> overlap("A 45-year-old man has chest pain radiating to the left arm since this morning, what next",
    ...         "Q: a 45-year-old man has chest pain radiating to the left arm since this morning, what next?")
    'ngram'
    """
    hit = TestIndex.from_texts([("test", test_text)], cfg).contaminated(text)
    return hit.reason if hit else None
