"""Which of a run's items overlap a corpus, by exactly the rule ``ins build`` decontaminates with.

The index (:class:`medsbench.ins.decontam.TestIndex`) is built over the run's items, as ``ins build``
builds it over the benchmark test inputs (the boilerplate cut then counts the run's items); the
corpus streams past it in chunks and every index key it hits is marked
(:meth:`TestIndex.hits`, :meth:`TestIndex.near_hits`), with the first corpus record that hit it.
An item is contaminated when one of its own keys was hit (:func:`owned_fingerprints` gives each
item's keys): its normalised text (``exact_input``), one of its script-aware n-grams (``ngram``; an
``ngram``-gram hit by a CJK corpus text counts only for an item without CJK characters, as the rule
says), or an LSH band (``near``). So an item is flagged exactly when some corpus text is
contaminated by it under :func:`medsbench.ins.decontam.overlap` (with the run's boilerplate cut).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from medsbench.contam.corpus import Corpus
from medsbench.ins.config import DecontamConfig
from medsbench.ins.decontam import REASONS, TestIndex, owned_fingerprints
from medsbench.ins.dedupe import script_classes, token_hashes, tokens
from medsbench.records.contamination import ContamRule, FirstMatch, ItemFlag

CHUNK_TEXTS = 4096
NONE = np.iinfo(np.int64).max  # "never hit" in the first-hit tables

#: hit kind -> (index key table, reason)
_TABLES = {"exact_input": ("input_keys", "exact_input"), "ngram": ("ngram_keys", "ngram"),
           "ngram_cjk_text": ("ngram_keys", "ngram"), "cjk": ("cjk_keys", "ngram"), "near": ("band_keys", "near")}
#: item key kind (owned_fingerprints) -> the hit kinds that can flag it
_ITEM_KEYS = {"inp": ("exact_input",), "ng": ("ngram", "ngram_cjk_text"), "cj": ("cjk",), "bd": ("near",)}


@dataclass(frozen=True)
class Item:
    """One run item to check: its task, instance id and the text checked."""

    task_id: str
    id: str
    text: str


@dataclass
class Located:
    """Corpus records in read order: record ordinal -> (corpus index, file, record number)."""

    starts: list[int]
    places: list[tuple[int, str]]
    read: int = 0  # records read so far (the next record's ordinal)

    def find(self, ordinal: int) -> FirstMatch:
        i = int(np.searchsorted(self.starts, ordinal, side="right")) - 1
        corpus, file = self.places[i]
        return FirstMatch(corpus=corpus, file=file, record=ordinal - self.starts[i] + 1)


class HitTables:
    """Per index key table and hit kind: the ordinal of the first corpus record that hit each key."""

    def __init__(self, index: TestIndex):
        self.index = index
        self.first = {kind: np.full(len(getattr(index, table)), NONE, np.int64) for kind, (table, _) in _TABLES.items()}

    def mark(self, kind: str, pos: np.ndarray, ordinals: np.ndarray) -> None:
        if len(pos):
            np.minimum.at(self.first[kind], pos, ordinals)

    def scan(self, texts: Sequence[str], ordinals: np.ndarray) -> None:
        """Mark every key the texts hit (one chunk of the corpus)."""
        toks = [tokens(x) for x in texts]
        lengths = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
        th = token_hashes([w for t in toks for w in t])
        classes = script_classes(texts, toks)
        for kind, pos, own in self.index.hits(texts, th, lengths, classes):
            self.mark(kind, pos, ordinals[own])
        if self.index.signer is not None:
            sigs, active = self.index.signer.signatures(th, lengths)
            pos, own = self.index.near_hits(sigs, active, np.arange(len(texts)))
            self.mark("near", pos, ordinals[own])


def _first_hits(tables: HitTables, items: Sequence[Item]) -> tuple[np.ndarray, list[set[str]]]:
    """Per item: the ordinal of the first corpus record that hit one of its keys, and the reasons."""
    idx = tables.index
    owned = owned_fingerprints([it.text for it in items], idx.cfg, idx.signer, idx.bander)
    has_cjk = np.zeros(len(items), dtype=bool)
    has_cjk[owned["cjk"][0]] = True
    first = np.full(len(items), NONE, np.int64)
    reasons: list[set[str]] = [set() for _ in items]
    for key_kind, hit_kinds in _ITEM_KEYS.items():
        if key_kind not in owned:
            continue
        own, keys = owned[key_kind]
        table = getattr(idx, _TABLES[hit_kinds[0]][0])
        if not len(keys) or not len(table):
            continue
        pos = np.searchsorted(table, keys)
        pos[pos == len(table)] = 0
        present = table[pos] == keys  # boilerplate n-grams are not in the index
        for kind in hit_kinds:
            when = np.where(present, tables.first[kind][pos], NONE)
            if kind == "ngram_cjk_text":  # counts only against items without CJK characters
                when = np.where(has_cjk[own], NONE, when)
            hit = when < NONE
            np.minimum.at(first, own[hit], when[hit])
            for i in np.unique(own[hit]):
                reasons[int(i)].add(_TABLES[kind][1])
    return first, reasons


def flag_items(items: Sequence[Item], corpora: Sequence[Corpus], cfg: DecontamConfig,
               progress: Callable[[str], None] | None = None) -> tuple[list[ItemFlag], ContamRule]:
    """The contaminated items (in item order) with their reasons and first matching record, and the rule."""
    index = TestIndex.from_texts([(it.task_id, it.text) for it in items], cfg)
    tables = HitTables(index)
    located = Located([], [])
    for c, corpus in enumerate(corpora):
        for texts, ordinals in _chunks(corpus, c, located):
            tables.scan(texts, ordinals)
            if progress is not None:
                progress(f"{corpus.path}: {located.read} record(s) read")
    first, reasons = _first_hits(tables, items) if items else (np.zeros(0, np.int64), [])
    flags = [ItemFlag(task_id=it.task_id, id=it.id, reasons=[r for r in REASONS if r in reasons[i]],
                      first=located.find(int(first[i])))
             for i, it in enumerate(items) if first[i] < NONE]
    rule = ContamRule(ngram=cfg.ngram, ngram_han=cfg.ngram_han, ngram_kana=cfg.ngram_kana, near=cfg.near,
                      threshold=cfg.threshold, max_ngram_test_freq=cfg.max_ngram_test_freq,
                      ignored_ngrams=index.ignored_ngrams, ignored_cjk_ngrams=index.ignored_cjk_ngrams)
    return flags, rule


def _chunks(corpus: Corpus, c: int, located: Located) -> Iterable[tuple[list[str], np.ndarray]]:
    """Chunks of (texts, record ordinal of each text), recording where each file's records start."""
    texts: list[str] = []
    ordinals: list[int] = []
    current = None
    for f, _number, record in corpus.records():
        ordinal = located.read
        located.read += 1
        if f != current:
            current = f
            located.starts.append(ordinal)
            located.places.append((c, str(f)))
        texts.extend(record)
        ordinals.extend([ordinal] * len(record))
        if len(texts) >= CHUNK_TEXTS:
            yield texts, np.asarray(ordinals, np.int64)
            texts, ordinals = [], []
    if texts:
        yield texts, np.asarray(ordinals, np.int64)
