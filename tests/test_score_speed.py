"""The scorer's fast paths give exactly what the straightforward computation gives, on real data.

Each shortcut in :mod:`medsbench.metrics.tokenize` and :mod:`medsbench.metrics.strict` (a
Treebank substitution run as ``str.replace``/split or skipped when it cannot match, Punkt's
slicing loop, the ASCII-only pre-checks and case-sensitive matching over ``text.lower()``) is
compared with the plain computation it replaces: NLTK's own tokenizers and the ``re.IGNORECASE``
patterns, over converted real task files (English, French, Russian, Chinese, Japanese MCQA and
MeQSum summaries from ../shared/data/raw) and crafted edge cases.
"""

from __future__ import annotations

import random

import pytest

from conftest import RAW, missing
from medsbench.metrics import strict as S
from medsbench.metrics import tokenize as T

nltk = pytest.importorskip("nltk")
regex = pytest.importorskip("regex")

SOURCES = ("medqa_usmle", "frenchmedmcqa", "rumeddanet", "meqsum", "medqa_mcmle_zh", "igakuqa")

EDGE = [
    "", " ", ".", '"', "''", "``", "\x1c", "a\x1db . c", "Tab\tsep.\x0bVT\x0cFF. next",
    '"Quoted start." He said: "no". Then... done?! Yes; 5 mg q.d. at 8 a.m. -- stop.',
    "(Sent1.) Sent2. [Sent3.] 'Sent4.' \u201cSent5.\u201d \u00abSent6.\u00bb Sent7!!! Really?) ok",
    "I cannot go; GONNA do it. 'TIS done, \u0130t's fine, 'tiſ odd, gonna \u212aeep.",
    "l' ECG montrait un sus-d\u00e9calage ; l' aspirine . patients' charts ' quoted ' x'll y'RE z'd",
    "Dr. Smith noted e.g. no mass ; follow-up CT in 3 months . \u2013 dash \u2014 em \u2012 fig \u2015 bar",
    "`` `single` ```triple``` \u201e low \u2018open ' and '' and \" end\"",
    "Ends with colon: and comma, 1,000 and 3:45 and :x ,y",
    "The answer is (B). THE ANSWER IS C. Correct   option: D; I would choose A or B. la respuesta es B",
    "答案是B。正解はC。La bonne réponse est D. Правильный ответ: A. opción correcta es B",
    "The diagnosis result is Pneumonia.\nDiagnosis: URTI\nLABEL: Bronchitis",
    "\u0131nfluenza and \u017fepsis with \u212alebsiella; KELVIN",
]


@pytest.fixture(scope="module")
def real_texts(tmp_path_factory) -> dict[str, list[str]]:
    """Inputs and targets of converted real test sets, by language (at most 400 per language)."""
    from medsbench.sources import convert
    from medsbench.tasks import catalog, find_task_files, iter_instances

    if not RAW.is_dir():
        missing(f"{RAW} not present")
    out = tmp_path_factory.mktemp("speed") / "tasks"
    for name in SOURCES:
        convert(name, RAW / name, out)
    by_lang: dict[str, list[str]] = {}
    rng = random.Random(0)
    for tid, splits in sorted(find_task_files(out).items()):
        lang = catalog()[tid].language
        texts = [t for i in iter_instances(splits["test"]) for t in (i.input, i.target)]
        by_lang.setdefault(lang, []).extend(rng.sample(texts, min(400, len(texts))))
    assert {"en", "fr", "ru", "zh", "ja"} <= set(by_lang)
    return by_lang


def _western(real_texts) -> list[str]:
    return real_texts["en"] + real_texts["fr"] + real_texts["ru"] + EDGE


# ------------------------------------------------------------------- tokenisation


def test_word_tokenize_many_equals_nltk_on_real_texts(real_texts, nltk_word_tokenize):
    texts = _western(real_texts)
    assert T.word_tokenize_many(texts) == [nltk_word_tokenize(t) for t in texts]


def test_punkt_sentences_equal_nltk_punkt(real_texts):
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    plain = PunktSentenceTokenizer(T.punkt_parameters())
    for text in _western(real_texts) + real_texts["zh"][:50] + real_texts["ja"][:50]:
        assert T.sent_tokenize(text) == plain.tokenize(text), text


def _batched_texts(real_texts) -> list[str]:
    """Texts as the batched Treebank sees them: sentences joined by the separator."""
    sents = [s for t in _western(real_texts) for s in T.sent_tokenize(t)]
    rng = random.Random(1)
    out = [T.SEP.join(sents)]
    for _ in range(200):
        out.append(T.SEP.join(rng.sample(sents, 5)))
    out += EDGE + [T.SEP.join(EDGE), T.SEP + '"a', '"' + T.SEP + '"b', " \x1c ", "\u0085 \u00a0x\u2028"]
    return out


def test_every_treebank_step_runs_exactly_as_its_regex(real_texts):
    batch = T._batch_treebank()
    assert batch is not None
    texts = _batched_texts(real_texts)
    for step, run in zip(batch.steps, batch.runners):
        if step is None:
            assert run is None
            continue
        pattern, repl = step
        for text in texts:
            assert run(text) == pattern.sub(repl, text), (pattern.pattern, text[:80])
        # and on the text as the previous steps leave it
    for text in texts:
        expected = text
        for step, run in zip(batch.steps, batch.runners):
            if step is None:
                expected = " " + expected.replace(T.SEP, f" {T.SEP} ") + " "
                text = " " + text.replace(T.SEP, f" {T.SEP} ") + " "
                continue
            expected = step[0].sub(step[1], expected)
            text = run(text)
            assert text == expected


def test_contraction_precheck_never_misses_a_match(real_texts):
    batch = T._batch_treebank()
    crafted = ["cannot", "CANNOT", "Gonna", "'TIS", "'tiſ", "gimme", "More'N", "d'Ye", "wanna", "lemme",
               "\u0130t", "gotta\u212a", "'twas", "no match here", "ſ"]
    for text in crafted + _western(real_texts):
        if batch.any_contraction.search(text):
            assert batch._may_contract(text, text.isascii()), text


def test_whitespace_and_realignment_tables_match_the_engines():
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    regex_ws = set(regex.findall(r"\s", chars))
    python_ws = {c for c in chars if c.isspace()}
    assert set(T._WS_MISMATCH) == regex_ws ^ python_ws
    assert regex_ws - python_ws == set()  # every `regex` whitespace also splits in str.split()
    from nltk.tokenize.punkt import PunktLanguageVars

    realign = PunktLanguageVars.re_boundary_realignment
    assert realign.pattern == T._REALIGN_PATTERN
    first = regex.compile(realign.pattern.split("+?")[0])
    assert set(first.findall(chars)) == set(T._REALIGN_FIRST)
    assert T._sentence_tokenizer()._realign_first == T._REALIGN_FIRST


def test_caseless_ascii_characters_are_the_only_non_ascii_ignorecase_matches():
    import re

    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = "".join(chr(c) for c in range(128, 0x110000) if not 0xD800 <= c < 0xE000)
    found = {c for c in chars if re.fullmatch(f"[{letters}]", c, re.IGNORECASE)}
    assert found == set(T._CASELESS_ASCII)


# ---------------------------------------------------------------- strict mode


def _plain_labels_in(text: str, labels: tuple[str, ...]) -> set[str]:
    return {S._norm_label(m.group(1)) for m in S._label_regex(labels).finditer(S.normalize(text))}


def _closed_texts(real_texts) -> list[str]:
    return _western(real_texts) + real_texts["zh"][:100] + real_texts["ja"][:100]


def test_labels_in_equals_the_full_label_regex(real_texts):
    from medsbench.tasks.labels import DDXPLUS_CONDITIONS, HALLMARKS, SEER_OPTIONS

    label_sets = [DDXPLUS_CONDITIONS, SEER_OPTIONS, HALLMARKS, ("entailment", "contradiction", "neutral"),
                  ("yes", "no", "maybe"), ("true", "false"), ("\u0131nfluenza", "sepsis", "klebsiella")]
    texts = _closed_texts(real_texts)
    texts += [f"The diagnosis result is {lab.upper()}." for lab in DDXPLUS_CONDITIONS]
    for labels in label_sets:
        for text in texts:
            assert S.labels_in(text, labels) == _plain_labels_in(text, labels), (labels[:3], text[:80])


def test_answer_phrases_and_prefixes_match_where_the_ignorecase_patterns_do(real_texts):
    from medsbench.metrics import all_scorers

    closed = [s for s in all_scorers().values() if s.answer_prefix is not None]
    patterns = {s.answer_prefix.pattern: s.answer_prefix for s in closed}.values()
    assert {s.name for s in closed} >= {"diagnosis", "treatment", "nli", "yesno_mcqa"}
    for text in _closed_texts(real_texts):
        text = S.normalize(text)
        assert [m.span() for m in S._answer_phrases(text)] == [m.span() for m in S._ANSWER_RE.finditer(text)]
        for prefix, yes_no in [(p, False) for p in patterns] + [(S.GENERIC_PREFIX, True)]:
            spans = [text[m.end():].split("\n")[0] for m in prefix.finditer(text)]
            if yes_no:
                spans += [text[m.end():].split("\n")[0] for m in S._ANSWER_RE.finditer(text)]
            plain = ([" ".join(spans)] if spans else []) + [text.split("\n")[0], text]
            assert list(S.answer_spans(text, prefix, yes_no=yes_no)) == plain
        if text.isascii():
            for p in patterns:
                assert [m.span() for m in S._lower_pattern(p).finditer(text.lower())] == [m.span() for m in p.finditer(text)]


def test_mcqa_letters_equal_tail_matching(real_texts):
    def plain(text: str) -> list[str]:
        letters: list[str] = []
        for m in S._ANSWER_RE.finditer(text):
            tail = text[m.end():]
            hit = S._LIST_AFTER_PHRASE.match(tail)
            if hit:
                letters.extend(S._LETTER_IN.findall(hit.group(0)))
                continue
            low = S._LOWER_AFTER_PHRASE.match(tail)
            if low:
                letters.append(low.group(1).upper())
        return letters

    outputs = [f"{a} {t}" for t in _closed_texts(real_texts)[:300]
               for a in ("The answer is (B), and C.", "答案是 A 和 D", "the right answer is b.")]
    for text in outputs + _closed_texts(real_texts):
        text = S.normalize(text)
        assert S._letters_after_phrases(text) == plain(text)


def test_normalize_leaves_ascii_alone_as_nfkc_does():
    import unicodedata

    for c in map(chr, range(128)):
        assert S.normalize(c * 3) == unicodedata.normalize("NFKC", c * 3).translate(S._HOMOGLYPHS)


def test_small_batches_split_texts_between_calls_without_changing_tokens(real_texts, monkeypatch):
    texts = real_texts["en"][:150] + EDGE
    whole = T.word_tokenize_many(texts)
    monkeypatch.setattr(T, "BATCH_MAX_CHARS", 300)  # most texts now straddle several batches
    assert T.word_tokenize_many(texts) == whole


def test_rouge_sentence_split_equals_the_packages_preprocessing(real_texts):
    from medsbench.metrics.text import _sentences

    def plain(text: str) -> list[list[str]]:
        return [" ".join(piece.split()).split(" ") for piece in text.split(".") if len(piece) > 0]

    for text in _western(real_texts) + real_texts["zh"][:50] + [" . .. \t.\n", "a .  b\u00a0c . ", "..."]:
        assert _sentences(text) == plain(text)


def test_punkt_ortho_context_does_not_grow_with_the_texts_scored():
    params = T.punkt_parameters()
    before = len(params.ortho_context)
    T.word_tokenize_many([f"Word{i} sentence. Another{i} one. Zq{i}x." for i in range(50)])
    assert len(params.ortho_context) == before
    assert params.ortho_context["never-seen-word"] == 0 and "never-seen-word" not in params.ortho_context
