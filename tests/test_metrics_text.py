"""Reference BLEU-1 / ROUGE-L / tokenisation equal the libraries the official scripts call."""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medsbench.metrics.text import bleu1, rouge_l
from conftest import need_module
from medsbench.metrics.tokenize import ja_tokenize, tokenize_many, word_tokenize, word_tokenize_many, zh_tokenize

nltk = need_module("nltk")
rouge = need_module("rouge")
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # noqa: E402

sys.setrecursionlimit(10000)  # the official utils.py does this: rouge recurses once per LCS step
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EN_WORDS = ["The", "patient", "Dr.", "Jones", "can't", "cannot", "U.S.", "3.5", "mg/dL", "(", ")", '"', "'", "''",
            "``", "e.g.", "vs.", "i.e.", ",", ".", "...", "?", "!", ";", ":", "--", "–", "«", "»", "“", "”", "’s",
            "don't", "gonna", "'tis", "St.", "Mr.", "No.", "1,000", "$", "%", "&", "*", "[", "]", "{", "}", "<", ">",
            "aspirin", "heparin", "was", "given", "Fever", "ECG", "II", "a.m.", "\n", "\t", "  ", "wanna", "I'd"]
ZH = "患者男性，65岁，因胸痛3小时入院。心电图提示下壁导联ST段抬高，诊断为急性心肌梗死。给予阿司匹林治疗。"
JA = "患者は65歳男性で、胸痛のため入院した。心電図で下壁誘導のST上昇を認め、急性心筋梗塞と診断された。"

en_text = st.lists(st.sampled_from(EN_WORDS) | st.text(max_size=6), max_size=40).map(
    lambda ws: "".join(w + (" " if i % 3 else "") for i, w in enumerate(ws)))
zh_text = st.lists(st.sampled_from(list(ZH)) | st.sampled_from(["阿司匹林", "。", " ", "ST", "."]), max_size=40).map("".join)
ja_text = st.lists(st.sampled_from(list(JA)) | st.sampled_from(["心筋梗塞", "。", " ", "ST", "."]), max_size=30).map("".join)


# nltk's own documented examples (nltk/test/tokenize.doctest)
DOC_EXAMPLES = [
    ("On a $50,000 mortgage of 30 years at 8 percent, the monthly payment would be $366.88.",
     ["On", "a", "$", "50,000", "mortgage", "of", "30", "years", "at", "8", "percent", ",", "the", "monthly", "payment",
      "would", "be", "$", "366.88", "."]),
    ('"We beat some pretty good teams to get here," Slocum said.',
     ["``", "We", "beat", "some", "pretty", "good", "teams", "to", "get", "here", ",", "''", "Slocum", "said", "."]),
    ("I cannot cannot work under these conditions!", ["I", "can", "not", "can", "not", "work", "under", "these", "conditions", "!"]),
    ("It's more'n enough.", ["It", "'s", "more", "'n", "enough", "."]),
    ("I called Dr. Jones. I called Dr. Jones.", ["I", "called", "Dr.", "Jones", ".", "I", "called", "Dr.", "Jones", "."]),
    ("The unicode 201C and 201D \u201cLEFT(RIGHT) DOUBLE QUOTATION MARK\u201d is also OPEN_PUNCT and CLOSE_PUNCT.",
     ["The", "unicode", "201C", "and", "201D", "\u201c", "LEFT", "(", "RIGHT", ")", "DOUBLE", "QUOTATION", "MARK",
      "\u201d", "is", "also", "OPEN_PUNCT", "and", "CLOSE_PUNCT", "."]),
]


@pytest.mark.parametrize(("text", "expected"), DOC_EXAMPLES)
def test_word_tokenize_matches_nltk_documented_examples(text, expected):
    assert word_tokenize(text) == expected


def test_batched_tokenizer_equals_nltk_on_a_realistic_batch(nltk_word_tokenize):
    texts = [ex for ex, _ in DOC_EXAMPLES] + [
        "Findings: No acute intracranial hemorrhage.  Mild chronic small vessel ischemic changes (stable). Impression:\n1. No acute process.",
        '"Quoted start." He said: "no". Then... done?! Yes; 5 mg q.d. at 8 a.m. -- stop.',
        "", "   ", ".", '"', "Ends with colon:", "'Tis the season, 'twas fine; gimme, lemme, gotta go.",
    ]
    assert word_tokenize_many(texts) == [nltk_word_tokenize(t) for t in texts]


@SETTINGS
@given(st.lists(en_text, min_size=1, max_size=6))
def test_word_tokenize_equals_nltk(nltk_word_tokenize, texts):
    assert word_tokenize_many(texts) == [nltk_word_tokenize(t) for t in texts]


@SETTINGS
@given(en_text, en_text)
def test_bleu1_equals_nltk_english(hyp, ref):
    h, r = word_tokenize(hyp), word_tokenize(ref)
    want = sentence_bleu([r], h, weights=(1, 0, 0, 0), smoothing_function=SmoothingFunction().method1)
    assert bleu1(r, h) == want


def _rouge_pkg(hyp: str, ref: str):
    try:
        return rouge.Rouge().get_scores(hyp, ref)[0]["rouge-l"]["f"]
    except ValueError:  # empty hypothesis / reference
        return None


@SETTINGS
@given(en_text, en_text)
def test_rouge_l_equals_rouge_package_english(hyp, ref):
    assert rouge_l(hyp, ref) == _rouge_pkg(hyp, ref)


@SETTINGS
@given(zh_text, zh_text)
def test_bleu_and_rouge_equal_libraries_chinese(hyp, ref):
    import jieba

    h, r = zh_tokenize(hyp), zh_tokenize(ref)
    assert h == list(jieba.cut(hyp))
    assert bleu1(r, h) == sentence_bleu([r], h, weights=(1, 0, 0, 0), smoothing_function=SmoothingFunction().method1)
    assert rouge_l(" ".join(h), " ".join(r)) == _rouge_pkg(" ".join(h), " ".join(r))


@settings(max_examples=40, deadline=None)
@given(ja_text, ja_text)
def test_bleu_and_rouge_equal_libraries_japanese(hyp, ref):
    from janome.tokenizer import Tokenizer

    h, r = ja_tokenize(hyp), ja_tokenize(ref)
    assert h == [t.surface for t in Tokenizer().tokenize(hyp)]
    assert bleu1(r, h) == sentence_bleu([r], h, weights=(1, 0, 0, 0), smoothing_function=SmoothingFunction().method1)
    assert rouge_l(" ".join(h), " ".join(r)) == _rouge_pkg(" ".join(h), " ".join(r))


def test_rouge_long_multi_sentence_texts_equal_package():
    import random

    rng = random.Random(7)
    words = "the patient chest pain aspirin of and with was a in to ECG elevation heparin renal acute".split()
    for _ in range(30):
        hyp = " ".join(rng.choice(words) + ("." if rng.random() < 0.1 else "") for _ in range(rng.randint(1, 120)))
        ref = " ".join(rng.choice(words) + ("." if rng.random() < 0.1 else "") for _ in range(rng.randint(1, 80)))
        assert rouge_l(hyp, ref) == _rouge_pkg(hyp, ref)


def test_tokenize_many_dispatches_by_language():
    assert tokenize_many(["阿司匹林治疗"], "zh") == [zh_tokenize("阿司匹林治疗")]
    assert tokenize_many(["Dr. Jones."], "fr") == [["Dr.", "Jones", "."]]  # fr/es/ru use word_tokenize like en


# ------------------------------------------------- protection against pathological input


def _rebuild_tokenizers():
    from medsbench.metrics import tokenize as T

    T._sentence_tokenizer.cache_clear()
    T._batch_treebank.cache_clear()


def test_every_tokenizer_regex_that_can_backtrack_runs_under_nltks_time_limit():
    from nltk import redos

    from medsbench.metrics import tokenize as T

    w = T._nltk_word_tokenizer()
    stages = (w.STARTING_QUOTES, w.PUNCTUATION, [w.PARENS_BRACKETS, w.DOUBLE_DASHES], w.ENDING_QUOTES)
    nltk_patterns = [getattr(p, "_rx", p).pattern for stage in stages for p, _ in stage]  # the batch's order
    steps = [s for s in T._batch_treebank().steps if s is not None]
    assert len(steps) == len(nltk_patterns)
    guarded = [p for (p, _), src in zip(steps, nltk_patterns) if src not in T.LINEAR_PATTERNS]
    # the patterns where a repetition is followed by more pattern (`[...]*\s*$`) are among them
    assert sum("\\s*" in p.pattern for p in guarded) == 2
    lang = T._sentence_tokenizer()._lang_vars
    for pattern in guarded + [lang._re_period_context, lang._re_word_tokenizer]:
        assert isinstance(pattern, T._Guarded), pattern
        assert pattern.sub.keywords == {"timeout": redos.DEFAULT_TIMEOUT}
    assert T.regex_timeout() == redos.DEFAULT_TIMEOUT


def test_pathological_text_stops_at_the_time_limit_instead_of_hanging(monkeypatch):
    """Untrusted text cannot pin the scorer: every regex call is bounded by the limit (lowered to 0
    here so the bounded input trips it at once; with NLTK's 5 s, a text that makes a pattern
    backtrack stops after 5 s per call instead of running unbounded)."""
    from nltk import redos

    from medsbench.errors import MedsbenchError

    # 200,000 characters of ". " is the slowest input shape found for these patterns
    text = ". " * 100_000
    monkeypatch.setattr(redos, "DEFAULT_TIMEOUT", 0.0)
    _rebuild_tokenizers()
    try:
        with pytest.raises(MedsbenchError, match="time limit") as err:
            word_tokenize_many([text])
        assert "\n" not in str(err.value) and "200000 characters" in str(err.value)
    finally:
        monkeypatch.undo()
        _rebuild_tokenizers()
    assert word_tokenize("Dr. Smith arrived. He left.") == ["Dr.", "Smith", "arrived", ".", "He", "left", "."]


def test_punkt_memo_keeps_only_short_contexts():
    from medsbench.metrics import tokenize as T

    tok = T._sentence_tokenizer()
    long_word = "x" * (T.MEMO_MAX_CHARS * 4)
    T.sent_tokenize(f"{long_word}. Then more. Fine.")
    assert all(len(k) <= T.MEMO_MAX_CHARS for k in tok._decisions)
