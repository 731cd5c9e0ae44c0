"""Text fingerprints and the dedupe indexes (exact hash set, MinHash LSH bands).

Memory is the point of this module. Per indexed item the build keeps:

* exact dedupe: one 8-byte digest of the normalised key text (``U64Set``);
* near-dup dedupe: ``b`` 8-byte band hashes of its MinHash signature (``b`` is
  chosen by datasketch's LSH optimiser from threshold and num_perm, e.g. 9-13
  for 128 permutations) - no signatures, no keys, no Python objects per item.

``U64Set`` is a log-structured set of sorted numpy ``uint64`` runs (runs of
similar size are merged, so at most ~log2(n) runs exist and lookups are
vectorised ``searchsorted`` calls), instead of a Python ``set`` that would cost
~70 bytes per entry. MinHash signatures come from ``datasketch`` (affine64
scheme, permutations shared by every sketch); the banding follows datasketch's
``MinHashLSH`` parameters but stores only band hashes, as datasketch's
in-memory LSH keeps several Python objects per band per item (kilobytes per
item at millions of items). Like ``MinHashLSH.query``, a band collision is the
near-duplicate verdict (no pairwise re-check).

Tokens: words (unicode ``\\w`` runs) with every CJK character a token of its
own, case-folded, so n-grams and shingles work for Chinese and Japanese too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from medsbench.errors import require

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
# Odd multipliers for rolling n-gram hashes and band mixing (wrapping uint64 arithmetic).
_ROLL = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_OUTPUT_SALT = np.uint64(0x94D049BB133111EB)
_SHORT_SEED = np.uint64(0x2545F4914F6CDD1D)
_EMPTY = np.zeros(0, dtype=np.uint64)


def normalise(text: str) -> str:
    """Case-folded text with whitespace runs collapsed (the exact-dedupe key)."""
    return " ".join(text.casefold().split())


def tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.casefold())


# Script classes of a token sequence, for script-aware n-gram sizes in decontamination.
LATIN, HAN, KANA = 0, 1, 2  # LATIN: any other script; HAN: mostly CJK, no kana/Hangul; KANA: mostly CJK with kana or Hangul
_CJK_CHAR_RE = re.compile(rf"[{_CJK}]")
_KANA_RE = re.compile("[\u3040-\u30ff\uac00-\ud7af]")


def script_class(text: str, toks: Sequence[str]) -> int:
    """HAN or KANA when at least half of the tokens are CJK characters, else LATIN.

    Text without any CJK character is LATIN without looking at its tokens, so
    the common case costs one regex search.
    """
    if not toks or _CJK_CHAR_RE.search(text) is None:
        return LATIN
    cjk = sum(1 for t in toks if len(t) == 1 and _CJK_CHAR_RE.match(t))
    if 2 * cjk < len(toks):
        return LATIN
    return KANA if _KANA_RE.search(text) else HAN


def has_cjk(text: str) -> bool:
    return _CJK_CHAR_RE.search(text) is not None


def script_classes(texts: Sequence[str], toks: Sequence[Sequence[str]]) -> np.ndarray:
    return np.fromiter((script_class(x, t) for x, t in zip(texts, toks)), dtype=np.int8, count=len(texts))


def subset(th: np.ndarray, lengths: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The concatenated token hashes and lengths of the items in ``mask``, and their original indexes."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return th[np.repeat(mask, lengths)], lengths[mask], np.nonzero(mask)[0]


def _xxh():
    return require("xxhash", "ins", "MedS-Ins dedupe")


def digest(text: str) -> int:
    """64-bit digest of a string (only compared for equality within one build)."""
    return _xxh().xxh3_64_intdigest(text.encode("utf-8"))


def digests(texts: Sequence[str]) -> np.ndarray:
    h = _xxh().xxh3_64_intdigest
    return np.fromiter((h(t.encode("utf-8")) for t in texts), dtype=np.uint64, count=len(texts))


def token_hashes(toks: Sequence[str]) -> np.ndarray:
    """xxh3-64 of each token's UTF-8 bytes; each distinct token is hashed once (text repeats its words)."""
    h = _xxh().xxh3_64_intdigest
    memo = {t: h(t.encode("utf-8")) for t in dict.fromkeys(toks)}
    return np.fromiter(map(memo.__getitem__, toks), dtype=np.uint64, count=len(toks))


def rolling(th: np.ndarray, lengths: np.ndarray, n: int, *, short: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n-gram hashes of many token sequences at once.

    ``th`` is the concatenation of the sequences' token hashes, ``lengths`` their
    lengths. Returns (hashes, owner index) for every window of ``n`` tokens that
    lies inside one sequence. With ``short`` a sequence shorter than ``n`` yields
    one hash of all its tokens (used for shingles), otherwise none.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return _EMPTY, np.zeros(0, dtype=np.int64)
    owners = np.repeat(np.arange(len(lengths)), lengths)
    ends = np.cumsum(lengths)
    with np.errstate(over="ignore"):
        m = total - n + 1
        if m > 0:
            h = np.zeros(m, dtype=np.uint64)
            for j in range(n):
                h = h * _ROLL + th[j : j + m]
            valid = np.arange(m) + n <= ends[owners[:m]]
            hashes, own = h[valid], owners[:m][valid]
        else:
            hashes, own = _EMPTY, np.zeros(0, dtype=np.int64)
        if short:
            small = np.nonzero((lengths > 0) & (lengths < n))[0]
            if len(small):
                extra = np.empty(len(small), dtype=np.uint64)
                starts = ends - lengths
                for i, s in enumerate(small):
                    acc = _SHORT_SEED
                    for v in th[starts[s] : ends[s]]:
                        acc = acc * _ROLL + v
                    extra[i] = acc
                hashes = np.concatenate([hashes, extra])
                own = np.concatenate([own, small])
    return hashes, own


class U64Set:
    """A growing set of uint64 values: sorted numpy runs merged like an LSM tree (8 bytes/value), with a
    fixed 16 MB presence table of the values' top bits so that most absent values skip the binary searches."""

    TABLE_BITS = 24

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self._table = np.zeros(1 << self.TABLE_BITS, dtype=bool)

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)

    def _top(self, values: np.ndarray) -> np.ndarray:
        return (values >> np.uint64(64 - self.TABLE_BITS)).astype(np.intp)

    def contains(self, q: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(q), dtype=bool)
        if not self.runs or not len(q):
            return hit
        cand = np.flatnonzero(self._table[self._top(q)])
        sub = q[cand]
        found = np.zeros(len(cand), dtype=bool)
        for run in self.runs:
            pos = np.searchsorted(run, sub)
            pos[pos == len(run)] = 0
            found |= run[pos] == sub
        hit[cand] = found
        return hit

    def add(self, values: np.ndarray) -> None:
        """Add values (callers pass values not yet in the set; duplicates are removed anyway)."""
        if not len(values):
            return
        self._table[self._top(values)] = True
        self.runs.append(np.unique(values))
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            b = self.runs.pop()
            a = self.runs.pop()
            self.runs.append(merge_sorted(a, b))


def merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted union of two sorted unique arrays (a stable sort of two sorted runs is a linear merge)."""
    c = np.concatenate([a, b])
    c.sort(kind="stable")
    if len(c) < 2:
        return c
    keep = np.empty(len(c), dtype=bool)
    keep[0] = True
    np.not_equal(c[1:], c[:-1], out=keep[1:])
    return c[keep]


def first_occurrence(values: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence of each value (file order), for duplicates inside one chunk."""
    mask = np.zeros(len(values), dtype=bool)
    if len(values):
        _, idx = np.unique(values, return_index=True)
        mask[idx] = True
    return mask


class ExactDeduper:
    """Drops every item whose key digest was seen before (first occurrence kept)."""

    def __init__(self) -> None:
        self.seen = U64Set()

    def check(self, keys: np.ndarray) -> np.ndarray:
        """Duplicate mask for a chunk of digests; the non-duplicates are remembered."""
        dup = self.seen.contains(keys) | ~first_occurrence(keys)
        self.seen.add(keys[~dup])
        return dup


class Signer:
    """MinHash signatures of token sequences' word shingles: datasketch's ``affine64`` scheme, vectorised.

    The permutations are datasketch's (``MinHash(num_perm, seed, scheme="affine64").permutations``),
    and a signature equals ``MinHash.update_batch`` over the shingle hashes with ``hashfunc=int``
    (each hash pre-mixed with the MurmurHash3 64-bit finalizer, then ``a * h + b`` modulo 2^64,
    minimum per permutation; ``tests/test_ins_units.py`` checks equality with datasketch). Computed
    for many items at once, in blocks of shingles, instead of one MinHash object per item.
    """

    BLOCK = 1 << 14  # shingles per vectorised block: BLOCK x num_perm x 8 bytes of scratch

    def __init__(self, *, num_perm: int, shingle: int, seed: int = 1) -> None:
        datasketch = require("datasketch", "ins", "near-duplicate search")
        self.num_perm = num_perm
        self.shingle = shingle
        a, b = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine64").permutations
        self._a = np.ascontiguousarray(a, dtype=np.uint64)
        self._b = np.ascontiguousarray(b, dtype=np.uint64)

    def signatures(self, th: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((items, num_perm) uint64 signatures, mask of items that have any token)."""
        hashes, owner = rolling(th, lengths, self.shingle, short=True)
        n = len(lengths)
        sigs = np.full((n, self.num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
        if not len(hashes):
            return sigs, np.zeros(n, dtype=bool)
        order = np.argsort(owner, kind="stable")  # short texts' hashes come last from rolling()
        hashes, owner = fmix64(hashes[order]), owner[order]
        for lo in range(0, len(hashes), self.BLOCK):
            h, own = hashes[lo : lo + self.BLOCK], owner[lo : lo + self.BLOCK]
            with np.errstate(over="ignore"):
                phv = np.multiply.outer(self._a, h)  # (num_perm, shingles): contiguous rows for reduceat
                phv += self._b[:, None]
            starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
            rows = own[starts]
            sigs[rows] = np.minimum(sigs[rows], np.minimum.reduceat(phv, starts, axis=1).T)
        active = np.zeros(n, dtype=bool)
        active[owner] = True
        return sigs, active

    @staticmethod
    def salt_output(th: np.ndarray) -> np.ndarray:
        """Token hashes of an output, made distinct from the same words in an input."""
        with np.errstate(over="ignore"):
            return th ^ _OUTPUT_SALT


_FMIX_M1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_FMIX_S = np.uint64(33)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (an avalanching bijection), element-wise with wrapping arithmetic."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> _FMIX_S)
        h = h * _FMIX_M1
        h = h ^ (h >> _FMIX_S)
        h = h * _FMIX_M2
        return h ^ (h >> _FMIX_S)


class Bander:
    """LSH banding with datasketch's optimal (b, r) for a Jaccard threshold; 8-byte band hashes."""

    def __init__(self, *, threshold: float, num_perm: int, seed: int = 1) -> None:
        datasketch = require("datasketch", "ins", "near-duplicate search")
        lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.b, self.r = lsh.b, lsh.r
        rng = np.random.default_rng(seed)
        self._mult = (rng.integers(0, 1 << 62, size=self.r, dtype=np.uint64) * np.uint64(2)) + np.uint64(1)
        self._salt = rng.integers(0, 1 << 63, size=self.b, dtype=np.uint64)

    def bands(self, sigs: np.ndarray) -> np.ndarray:
        """(items, b) band hashes, distinct per band index."""
        n = len(sigs)
        cut = sigs[:, : self.b * self.r].reshape(n, self.b, self.r)
        with np.errstate(over="ignore"):
            h = (cut * self._mult).sum(axis=2, dtype=np.uint64)
            h ^= self._salt
            h *= _MIX
        return h


class NearDeduper:
    """Drops items whose LSH bands collide with an earlier kept item's (within the same group)."""

    def __init__(self) -> None:
        self.seen = U64Set()

    def check(self, bands: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Near-dup mask for a chunk: (items, b) band hashes, (items,) group digests."""
        n = len(bands)
        if n == 0:
            return np.zeros(0, dtype=bool)
        with np.errstate(over="ignore"):
            keyed = (bands ^ groups[:, None]) * _MIX
        dup = self.seen.contains(keyed.ravel()).reshape(keyed.shape).any(axis=1)
        dup[np.flatnonzero(~dup)[chunk_duplicates(keyed[~dup])]] = True
        self.seen.add(keyed[~dup].ravel())
        return dup


def chunk_duplicates(keyed: np.ndarray) -> np.ndarray:
    """Rows of ``keyed`` (items, b) sharing a key with an earlier kept row; the first of a group is kept.

    The same verdicts as walking the rows in order with a set of the kept rows' keys, but the walk
    visits only rows with a key seen in an earlier row (a row whose keys are all new is kept, and
    so is the first row holding a key).
    """
    m, b = keyed.shape
    out = np.zeros(m, dtype=bool)
    if m < 2:
        return out
    _, first, inv = np.unique(keyed.ravel(), return_index=True, return_inverse=True)
    first_row = (first // b)[inv.ravel()].reshape(m, b)  # the first row holding each element's key
    cand = np.flatnonzero((first_row < np.arange(m)[:, None]).any(axis=1))
    if not len(cand):
        return out
    candidates = set(cand.tolist())
    kept_keys: set[int] = set()  # keys of the kept candidate rows
    for r in cand.tolist():
        row, firsts = keyed[r].tolist(), first_row[r].tolist()
        if any(f < r and (f not in candidates or k in kept_keys) for k, f in zip(row, firsts)):
            out[r] = True
        else:
            kept_keys.update(row)
    return out
