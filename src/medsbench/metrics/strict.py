"""Strict mode: extract the answer a model actually gave, then compare it honestly.

The official scorers test the first character or a substring, so an output that lists
every label, or copies the whole input, scores. Here:

* MCQA: option letters from explicit answer statements in six languages ("the answer is
  (B)", "答案是B", "正解はB", "la bonne réponse est B", "la respuesta correcta es B",
  "правильный ответ: B"), a leading letter ("B.", "(B)", "**B**"), else the option text
  itself (options are read from the input). The set of letters must equal the gold set;
  naming two options when one is right is wrong. PubMedQA: yes / no / maybe.
* Closed-label tasks: the label vocabulary is fixed by the scorer (the 49 DDXPlus
  conditions, the 7 SEER options; see :mod:`medsbench.tasks.labels`) or, for NLI, fact
  verification, outcome and PubMedQA, the scorer's labels plus the task's own (catalog
  ``labels:``, the full task file's golds); the answer span (after the scorer's answer prefix,
  else the first line, else the whole output) must name exactly one label.
* NER: a lead-in ("Answer:", "The entities are:", "Here are the chemicals:") removed, split
  on commas (not between digits), semicolons and new lines, bullets removed, case and space
  normalised, trailing periods of each entity removed (the list's closing period and an
  entity's own, "sp. nov.", are formatting: the official rule drops every "."); "There is no
  related entity." (either spelling) and "none" are the empty set; nothing left after the
  lead-in is a parse failure.
* HoC: hallmark names present; "None of the hallmarks" is the empty set; macro average
  over labels that occur in gold or predictions.
* Information extraction: the same lead-in removed, then normalised exact match (list items
  split as NER's, in any order), plus token F1; an empty answer or a non-answer ("N/A", "not mentioned",
  "I cannot ...") is a parse failure.
* Text similarity: the official BLEU-1 / ROUGE-L of both texts stripped of surrounding white
  space (as the official rationale script strips them: the ``rouge`` package counts a blank
  piece after a final "." as a sentence), and no item is skipped (empty = 0).

Each scorer returns ``(stats_row, parsed)``; ``parsed`` is False when no answer could be
extracted from a non-empty output (the parse-failure rate).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from medsbench.tasks.labels import HALLMARKS
from collections import Counter

OPTION_LETTERS = "ABCDEFGHIJ"
# Cyrillic / Greek capitals that look like Latin option letters (typed on another keyboard layout).
_HOMOGLYPHS = str.maketrans({"А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "Α": "A", "Β": "B", "Ε": "E"})

_ANSWER_PHRASES = [
    # English
    r"\banswers?\s*(?:is|are|would\s+be|should\s+be|will\s+be|=|:)",
    r"\b(?:correct|right|best|final)\s+(?:option|choice|answer)s?\s*(?:is|are|:)?",
    r"\b(?:i\s+(?:would\s+)?(?:choose|pick|select))",
    # Chinese
    r"(?:正确)?(?:答案|选项|選項)\s*(?:应该|應該|应|應)?\s*(?:是|为|為|选|選)?\s*[:：]?",
    r"(?:故|所以|因此)?\s*选\s*(?=[A-J])",
    # Japanese
    r"(?:正解|答え|解答)\s*(?:は|：|:)",
    # French
    r"\b(?:la\s+)?(?:bonne\s+)?réponses?\s*(?:correctes?\s*)?(?:est|sont|:)",
    # Spanish
    r"\b(?:la\s+)?respuestas?\s*(?:correctas?\s*)?(?:es|son|:)",
    r"\bopci[oó]n\s+correcta\s*(?:es|:)?",
    # Russian
    r"(?:правильн\w*\s+)?(?:ответ\w*|вариант\w*)\s*(?:это|[-—–:])?",
]
_ANSWER_RE = re.compile("(?:" + "|".join(_ANSWER_PHRASES) + ")", re.IGNORECASE)
# The phrases an ASCII text can contain (the others need a Chinese, Japanese, French "é" or
# Cyrillic character), all lower-case: on an ASCII text, this case-sensitive pattern over
# text.lower() finds exactly the matches (same positions) of _ANSWER_RE over the text, ~10x faster.
_ASCII_PHRASES = (0, 1, 2, 7, 8)
_ANSWER_RE_LOWER = re.compile("(?:" + "|".join(_ANSWER_PHRASES[i] for i in _ASCII_PHRASES) + ")")


def _answer_phrases(text: str) -> Iterable[re.Match[str]]:
    """``_ANSWER_RE.finditer(text)`` (match positions; read groups from ``text`` itself)."""
    if text.isascii():
        return _ANSWER_RE_LOWER.finditer(text.lower())
    return _ANSWER_RE.finditer(text)
_WRAP_OPEN = r"[\s(\[（【*「\"'`]*"
_WRAP_CLOSE = r"[)\]）】*」\"'`]*"
_OPTION_WORD = r"(?:(?:option|choice|opción|opcion|вариант)\s+)?"
_LETTER = _WRAP_OPEN + _OPTION_WORD + _WRAP_OPEN + r"([A-J])" + _WRAP_CLOSE + r"(?![A-Za-z])"
_LOWER_LETTER = _WRAP_OPEN + r"([a-j])" + _WRAP_CLOSE + r"(?=[.:)\]]|\s*$|\s*\n)"
_JOIN = r"\s*(?:,|、|，|/|&|;|\band\b|\bor\b|\bet\b|\by\b|\bo\b|\bou\b|\bи\b|\bили\b|和|或|及び|と)\s*"
_LIST_AFTER_PHRASE = re.compile(r"\s*[:：]?\s*" + _LETTER + "(?:" + _JOIN + _LETTER + ")*")
_LOWER_AFTER_PHRASE = re.compile(r"\s*[:：]?\s*" + _LOWER_LETTER)
_LEADING = re.compile(
    r"^\s*" + _LETTER.replace(r"(?![A-Za-z])", r"(?=[.:：、,，)\]）*\-–—]|\s*$|\s*\n|\s+[-–—]|(?<=[)\]）】*」])\s)")
    + "(?:" + _JOIN + _LETTER + ")*"
)
_LETTER_IN = re.compile(r"(?<![A-Za-z])([A-J])(?![A-Za-z])")
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[.)：:]\s*(.+?)\s*$", re.MULTILINE)


def normalize(text: str) -> str:
    """NFKC (full-width letters and colons) and homoglyph letters."""
    if text.isascii():  # NFKC leaves ASCII as it is, and every homoglyph is non-ASCII
        return text
    return unicodedata.normalize("NFKC", text).translate(_HOMOGLYPHS)


def is_empty(output: object) -> bool:
    return output is None or (isinstance(output, float)) or not str(output).strip()


# -------------------------------------------------------------------------- MCQA


def parse_options(input_text: str | None) -> dict[str, str]:
    """Option letter -> option text, from "A. text" lines of the question."""
    if not input_text:
        return {}
    found: dict[str, str] = {}
    for m in _OPTION_LINE.finditer(normalize(input_text)):
        found.setdefault(m.group(1), m.group(2))
    # only a run starting at A counts as options (a stray "B: ..." line in a case is not)
    letters = "".join(sorted(found))
    return found if letters and OPTION_LETTERS.startswith(letters) and len(letters) >= 2 else {}


def _letters_after_phrases(text: str) -> list[str]:
    letters: list[str] = []
    for m in _answer_phrases(text):
        # matching at m.end() equals matching the tail text[m.end():]: neither pattern looks
        # behind its start (no lookbehind, \b or ^ before the first character it consumes)
        hit = _LIST_AFTER_PHRASE.match(text, m.end())
        if hit:
            letters.extend(_LETTER_IN.findall(hit.group(0)))
            continue
        low = _LOWER_AFTER_PHRASE.match(text, m.end())
        if low:
            letters.append(low.group(1).upper())
    return letters


def _norm_option(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".").split())


def _option_text_letters(text: str, options: dict[str, str]) -> set[str]:
    low = " ".join(text.lower().split())
    spans: list[tuple[int, int, str]] = []
    for letter, opt in options.items():
        needle = _norm_option(opt)
        if not needle:
            continue
        for m in re.finditer(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", low):
            spans.append((m.start(), m.end(), letter))
    # an option text inside a longer one that also matched (e.g. "aspirin" in "aspirin and heparin") does not count
    keep = {
        letter
        for s, e, letter in spans
        if not any((s2 <= s and e <= e2) and (e2 - s2) > (e - s) for s2, e2, _ in spans)
    }
    return keep


def mcqa_letters(output: str, options: dict[str, str] | None = None) -> set[str] | None:
    """Letters the output gives as its answer; None if it gives none."""
    text = normalize(output)
    letters = _letters_after_phrases(text)
    if not letters:
        lead = _LEADING.match(text)
        if lead:
            letters = _LETTER_IN.findall(lead.group(0))
    if letters:
        return set(letters)
    if options:
        by_text = _option_text_letters(text, options)
        if by_text:
            return by_text
    return None


def mcqa(output: object, gold: object, input_text: str | None) -> tuple[list[float], bool]:
    if is_empty(output):
        return [0.0, 1.0], True
    options = parse_options(input_text)
    want = mcqa_letters(str(gold), options)
    got = mcqa_letters(str(output), options)
    if got is None:
        return [0.0, 1.0], False
    return [float(want is not None and got == want), 1.0], True


# ------------------------------------------------------------- closed label sets


@functools.lru_cache(maxsize=256)
def _label_alternatives(labels: tuple[str, ...]) -> tuple[str, ...]:
    """The normalised labels in the order the label regex tries them (longest first)."""
    return tuple(sorted({_norm_label(x) for x in labels if _norm_label(x)}, key=len, reverse=True))


@functools.lru_cache(maxsize=256)
def _label_regex(labels: tuple[str, ...]) -> re.Pattern[str]:
    return _alternatives_regex(_label_alternatives(labels))


@functools.lru_cache(maxsize=4096)
def _alternatives_regex(alts: tuple[str, ...], ignore_case: bool = True) -> re.Pattern[str]:
    body = "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in alts) or r"(?!x)x"
    return re.compile(r"(?<!\w)(" + body + r")(?!\w)", re.IGNORECASE if ignore_case else 0)


@functools.lru_cache(maxsize=256)
def _label_first_words(labels: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """(label, its first word) in regex order; None for a non-ASCII label (always tried)."""
    return tuple((a, a.split(" ")[0] if a.isascii() else None) for a in _label_alternatives(labels))


def _norm_label(text: str) -> str:
    return " ".join(normalize(text).lower().strip().rstrip(".").split())


def labels_in(text: str, labels: tuple[str, ...]) -> set[str]:
    text = normalize(text)
    if text.isascii():
        # Under IGNORECASE an ASCII text character matches an ASCII pattern character only in
        # its two ASCII cases, so a label whose first word is not in text.lower() cannot match:
        # the regex over the remaining labels (same order) finds exactly the same matches.
        low = text.lower()
        alts = tuple(a for a, first in _label_first_words(labels) if first is None or first in low)
        if not alts:
            return set()
        if all(a.isascii() for a in alts):  # lower-case ASCII labels: case-sensitive over text.lower()
            return {_norm_label(m.group(1)) for m in _alternatives_regex(alts, False).finditer(low)}
        rx = _alternatives_regex(alts)
    else:
        rx = _label_regex(labels)
    return {_norm_label(m.group(1)) for m in rx.finditer(text)}


DIAGNOSIS_PREFIX = re.compile(r"diagnosis(?:\s+result)?\s*(?:is|:)", re.IGNORECASE)
TREATMENT_PREFIX = re.compile(r"treatment(?:\s+planning|\s+plan)?\s*(?:is|:)\s*:?", re.IGNORECASE)
GENERIC_PREFIX = re.compile(r"(?:answer|label|prediction|result|relation|verdict)\s*(?:is|:)", re.IGNORECASE)
_RIGHT_ANSWER = re.compile(r"(?i)the right answer is")


def closed_gold(gold: str, prefix: re.Pattern[str] = GENERIC_PREFIX, *, yes_no: bool = False) -> str:
    """The label of a closed-label gold answer: "The diagnosis result is X." -> "x" (the answer
    ``prefix`` stripped when at most two words precede it; ``yes_no``: "The right answer is"
    removed, as PubMedQA golds read), normalised like the labels."""
    text = normalize(gold)
    if yes_no:
        text = _RIGHT_ANSWER.sub("", text)
    else:
        m = prefix.search(text)
        if m and len(text[: m.start()].split()) <= 2:
            text = text[m.end():]
    return _norm_label(text)


@functools.lru_cache(maxsize=64)
def _lower_pattern(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """A lower-case ASCII ``re.IGNORECASE`` pattern, case-sensitive (for ASCII text.lower())."""
    if not pattern.pattern.isascii() or pattern.pattern != pattern.pattern.lower():
        raise ValueError(f"not a lower-case ASCII pattern: {pattern.pattern!r}")
    return re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)


def _line_from(text: str, start: int) -> str:
    """``text[start:].split("\n")[0]`` without copying the rest of the text."""
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def answer_spans(text: str, prefix: re.Pattern[str] = GENERIC_PREFIX, *, yes_no: bool = False) -> Iterable[str]:
    """Where a closed answer is looked for, in order: the lines after ``prefix`` (and, ``yes_no``,
    after the MCQA answer phrases) joined, else the first line, else the whole text."""
    if text.isascii():  # the prefixes are lower-case ASCII: the same matches, case-sensitively
        found = _lower_pattern(prefix).finditer(text.lower())
    else:
        found = prefix.finditer(text)
    spans = [_line_from(text, m.end()) for m in found]
    if yes_no:
        spans += [_line_from(text, m.end()) for m in _answer_phrases(text)]
    if spans:
        yield " ".join(spans)
    yield _line_from(text, 0)
    yield text


def closed_label(
    output: object, gold: str, labels: tuple[str, ...], prefix: re.Pattern[str] = GENERIC_PREFIX, *, yes_no: bool = False
) -> tuple[list[float], bool]:
    """Correct iff the answer span names exactly one label and it is ``gold`` (a label, see :func:`closed_gold`)."""
    if is_empty(output):
        return [0.0, 1.0], True
    text = normalize(str(output))
    for span in answer_spans(text, prefix, yes_no=yes_no):
        found = labels_in(span, labels)
        if found:
            return [float(len(found) == 1 and gold in found), 1.0], True
    return [0.0, 1.0], False


def label_set(known: Iterable[str]) -> tuple[str, ...]:
    """Labels normalised as :func:`closed_gold` normalises a gold, without duplicates, in order."""
    return tuple(dict.fromkeys(lab for k in known if (lab := _norm_label(k))))


# ----------------------------------------------------------------------- lead-in

_LEAD_IN = re.compile(
    r"^\s*(?:[*_#>]+\s*)?(?:(?:sure|okay|ok)\s*[,.!]\s*)?(?:"
    # "Answer: X", "The answer is X", "Final output: X"
    r"(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|output|response|result)s?\s*(?:is|are|:)\s*:?"
    # "The entities are: X", "Chemical entities: X", "Extracted participants in the sentence: X"
    r"|(?:here\s+(?:is|are)\s+)?(?:the\s+)?(?:[\w-]+\s+){0,3}?"
    r"(?:entities|entity|mentions|phrases|participants|interventions|outcomes|information|extractions?)"
    r"\s*(?:(?:in|of|from)\s+(?:the|this)\s+(?:text|sentence|passage|input)\s*)?(?:(?:are|is)\s*:|:)"
    # "Here are the chemicals mentioned: X"
    r"|here\s+(?:is|are)\s+[^:\n]{0,60}:"
    r")\s*(?:[*_]+\s*)?",
    re.IGNORECASE,
)


def strip_lead_in(text: str) -> str:
    """The answer without a lead-in phrase ("Answer: X", "The entities are: X." -> "X", "X.")."""
    m = _LEAD_IN.match(text)
    return text[m.end():] if m else text


# --------------------------------------------------------------------------- NER

_NO_ENTITY = re.compile(
    r"^\s*(?:there\s+(?:is|are)\s+no\s+(?:related\s+)?(?:entity|enetity|entities)"
    r"|no\s+(?:related\s+)?(?:entity|entities|enetity)(?:\s+found)?|none)\s*\.?\s*$",
    re.IGNORECASE,
)
_NER_SPLIT = re.compile(r"\s*(?:;|\n|,(?!\d)|(?<!\d),)\s*")
_BULLET = re.compile(r"^(?:[-*•]|\d+[.)])\s+")


def answer_items(text: str) -> list[str]:
    """The items of a list answer, lead-in removed: split on commas (not between digits),
    semicolons and new lines; bullets ("-", "*", "1.") and quotes removed; case and spaces
    normalised; trailing periods removed from each item, so the list's closing period and an
    item's own ("sp. nov.") are both formatting (the official NER rule drops every ".")."""
    return split_items(strip_lead_in(normalize(text)).strip())


def split_items(text: str) -> list[str]:
    """:func:`answer_items` of a text whose lead-in is already removed."""
    out = []
    for item in _NER_SPLIT.split(text):
        item = _BULLET.sub("", item.strip()).strip().strip("\"'`").strip()
        item = " ".join(item.lower().split()).rstrip(". ")
        if item:
            out.append(item)
    return out


def ner_entities(text: str) -> set[str] | None:
    """Entity set of an answer (:func:`answer_items`); None if it is not an answer (nothing parseable)."""
    if _NO_ENTITY.match(strip_lead_in(normalize(text)).strip()):
        return set()
    return set(answer_items(text)) or None


def ner(output: object, gold: object) -> tuple[list[float], bool]:
    g = ner_entities(str(gold)) or set()
    if is_empty(output):
        return [0.0, 0.0, float(len(g))], True
    o = ner_entities(str(output))
    if o is None:
        return [0.0, 0.0, float(len(g))], False
    return [float(len(g & o)), float(len(o - g)), float(len(g - o))], True


# --------------------------------------------------------------------------- HoC

_NO_HALLMARK = re.compile(r"\bnone\b|\bno\s+(?:related\s+)?hallmarks?\b", re.IGNORECASE)


def hoc_labels(text: str) -> list[bool] | None:
    low = " ".join(normalize(text).lower().split())
    found = [name in low for name in HALLMARKS]
    if any(found):
        return found
    return [False] * len(HALLMARKS) if _NO_HALLMARK.search(low) else None


def hoc(output: object, gold: object) -> tuple[list[float], bool]:
    ref = hoc_labels(str(gold)) or [False] * len(HALLMARKS)
    parsed = True
    if is_empty(output):
        pred = [False] * len(HALLMARKS)
    else:
        got = hoc_labels(str(output))
        parsed = got is not None
        pred = got or [False] * len(HALLMARKS)
    tp = [float(p and g) for p, g in zip(pred, ref)]
    fp = [float(p and not g) for p, g in zip(pred, ref)]
    fn = [float(g and not p) for p, g in zip(pred, ref)]
    return tp + fp + fn, parsed


# ------------------------------------------------------------ information extraction

_QUOTES = str.maketrans("", "", "\"'“”‘’`")
_TOKEN = re.compile(r"\w+")


def _ie_norm(text: str) -> str:
    return " ".join(normalize(text).lower().translate(_QUOTES).split()).strip(" .;,:")


def _token_f1(pred: str, gold: str) -> float:
    p = _TOKEN.findall(pred.lower())
    g = _TOKEN.findall(gold.lower())
    if not p or not g:
        return float(p == g)

    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


_IE_NON_ANSWER = re.compile(
    r"^(?:n/?a|none|null|nil|unknown|not\s+(?:mentioned|applicable|available|reported|stated|found|given)"
    r"|no\s+(?:answer|information|data)(?:\s+\w+)*|(?:i|sorry)\b.*\b(?:cannot|can't|can not|unable|don't|do not)\b.*)$",
    re.IGNORECASE | re.DOTALL,
)


def information_extraction(output: object, gold: object) -> tuple[list[float], bool]:
    if is_empty(output):
        return [0.0, 1.0, 0.0], True
    o_raw, g_raw = normalize(strip_lead_in(str(output))), normalize(strip_lead_in(str(gold)))
    o, g = _ie_norm(o_raw), _ie_norm(g_raw)
    ok = o == g or sorted(map(_ie_norm, split_items(o_raw))) == sorted(map(_ie_norm, split_items(g_raw)))
    parsed = ok or (bool(o) and not _IE_NON_ANSWER.match(o))
    return [float(ok), 1.0, _token_f1(o, g)], parsed
