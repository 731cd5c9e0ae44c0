"""BLEU-1 and ROUGE-L with the exact numbers of the official scripts, computed faster.

* :func:`bleu1` = ``nltk.translate.bleu_score.sentence_bleu([ref], hyp, weights=(1, 0, 0, 0),
  smoothing_function=SmoothingFunction().method1)``: clipped unigram precision times the
  brevity penalty, with NLTK's float operations in NLTK's order (``exp(log(p1))``), so the
  result is bit-identical.
* :func:`rouge_l` = ``rouge.Rouge().get_scores(hyp, ref)[0]["rouge-l"]["f"]`` (PyPI ``rouge``
  1.0.1): sentences split on ".", whitespace words, *sets* of words (its ``exclusive`` mode),
  and the summary-level union of the words of one particular LCS per sentence pair - the
  one its backtracking picks, so ties are broken exactly as it does. The package fills an
  O(n*m) dict per pair and backtracks recursively; here each DP row is a bit-vector
  (Allison-Dix / Hyyro bit-parallel LCS) and the backtracking reads cell values back from
  the row bit-vectors. Hypothesis words absent from the reference sentence are dropped
  first (such columns only ever copy their left neighbour, and the backtracking always
  steps left through them), and pairs that cannot add a new word to the union are skipped.
  The package raises on an empty hypothesis or reference; :func:`rouge_l` returns None there.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def bleu1(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    """NLTK sentence BLEU with weights (1, 0, 0, 0) and smoothing method1, for one reference."""
    hyp_len = len(hypothesis)
    if hyp_len == 0:
        return 0.0
    ref_counts = Counter(reference)
    matches = 0
    for word, count in Counter(hypothesis).items():
        got = ref_counts.get(word)
        if got:
            matches += count if count < got else got
    if matches == 0:
        return 0.0
    ref_len = len(reference)
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    # NLTK: bp * exp(fsum(w_i * log(p_i))); the zero-weight terms add exactly 0.
    return bp * math.exp(math.log(matches / hyp_len))


def _sentences(text: str) -> list[list[str]]:
    """``rouge``'s preprocessing: split on ".", drop empty pieces, normalise spaces, split on " ".

    ``" ".join(piece.split()).split(" ")`` is ``piece.split()``, or ``[""]`` for a blank piece."""
    return [piece.split() or [""] for piece in text.split(".") if piece]


def _lcs_words(x: Sequence[str], y: Sequence[str]) -> set[str]:
    """Words of the LCS of x (reference) and y (hypothesis) that ``rouge``'s ``_recon_lcs`` returns."""
    xs = set(x)
    y = [w for w in y if w in xs]  # dead columns never change the table or the path
    m = len(y)
    if m == 0:
        return set()
    masks: dict[str, int] = {}
    for j, w in enumerate(y):
        masks[w] = masks.get(w, 0) | (1 << j)
    full = (1 << m) - 1
    # rows[i] encodes DP row i: L[i][j] = j - popcount(rows[i] & ((1 << j) - 1)).
    rows = [full]
    v = full
    for w in x:
        u = v & masks.get(w, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    out: set[str] = set()
    i, j = len(x), m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i -= 1
            j -= 1
            continue
        low_j = (1 << j) - 1
        up = j - (rows[i - 1] & low_j).bit_count()
        left = (j - 1) - (rows[i] & (low_j >> 1)).bit_count()
        if up > left:
            i -= 1
        else:
            j -= 1
    return out


def rouge_l(hypothesis: str, reference: str) -> float | None:
    """``Rouge().get_scores(hypothesis, reference)[0]["rouge-l"]["f"]``; None where it raises."""
    hyp = _sentences(hypothesis)
    ref = _sentences(reference)
    if not hyp or not ref:
        return None
    ref_vocab = {w for s in ref for w in s}
    hyp_vocab = {w for s in hyp for w in s}
    reachable = ref_vocab & hyp_vocab
    union: set[str] = set()
    if reachable:
        hyp_sets = [set(s) for s in hyp]
        for r in ref:
            r_set = set(r)
            if r_set <= union:
                continue
            for h, h_set in zip(hyp, hyp_sets):
                common = r_set & h_set
                if not common or common <= union:
                    continue  # this pair cannot add a new word
                union |= set(r) if h == r else _lcs_words(r, h)
            if len(union) == len(reachable):
                break
    llcs = len(union)
    r_lcs = llcs / len(ref_vocab)
    p_lcs = llcs / len(hyp_vocab)
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))
