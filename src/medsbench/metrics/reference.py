"""Reference mode: the official MedS-Bench scoring scripts' semantics, item by item.

Reproduced from MAGIC-AI4Med/MedS-Ins ``Metrics/*.py`` (read, not copied), including
their quirks, because these are the numbers the paper's leaderboard reports:

* The scripts read the submission CSV with pandas, so an empty cell - and any cell that
  pandas' default ``na_values`` turns into NaN, e.g. ``NA``, ``None``, ``null`` - is NaN,
  which most scripts then turn into the string ``"nan"`` via ``str()``. :func:`is_na`
  reproduces that for every input format (our JSONL would become that CSV).
* Where a script would crash (``.lower()`` on NaN in diagnosis/treatment/fact
  verification, ``pred[0]`` on a blank MCQA answer, ``Rouge`` on an empty text, NaN in
  summaries), the item scores 0 instead; that is the only deviation, documented in
  :data:`DEVIATIONS`.
* MCQA compares the first character after "the right answer is" and only counts a-d
  (task123: y/n): an "E" answer, or PubMedQA "maybe", never scores, not even gold.
* NER removes every ".", splits ``text[:-1]`` on ", " (chopping the last character) and
  skips NaN outputs entirely (their gold entities are not counted as misses).
* Rationale strips both texts and skips items where either is empty; explanation skips
  non-string cells; task100 lower-cases both, removes "." from the gold, counts an empty
  output as 0.

Each item function returns a row of additive statistics (see :mod:`medsbench.metrics.registry`)
or None when the official script skips the item; each ``*_pair`` function returns the
(hypothesis, reference) texts the script compares, or None when it skips the item.
"""

from __future__ import annotations

import math

from medsbench.tasks.labels import HALLMARKS

# pandas.read_csv's default NA strings (pandas._libs.parsers.STR_NA_VALUES) plus the empty cell.
PANDAS_NA = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)

DEVIATIONS = (
    "items on which an official script would crash (NaN or blank output, empty text for Rouge) score 0",
    "rows whose gold is missing are not scored (the scripts would crash or compare against 'nan')",
    "diagnosis is scored per task id (the official script scores every row of its file)",
    "rationale items with a NaN output are skipped like empty ones (the script crashes on .strip())",
    "task ids are stripped of surrounding whitespace (the official scripts compare them exactly)",
    "every cell is read as the text in the file: an all-numeric output or gold column stays text "
    "(pandas would parse it as numbers, e.g. '01' -> '1', '2.50' -> '2.5')",
    "failed items (the backend gave up: 'error' set in predictions.jsonl) are missing from both modes and "
    "reported as n_failed and coverage (the official scripts would score their empty output)",
)


def is_na(value: object) -> bool:
    """True when pandas would read this cell as NaN."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value in PANDAS_NA


def as_str(value: object) -> str:
    """``str(cell)`` as the scripts do it: NaN becomes "nan"."""
    return "nan" if is_na(value) else str(value)


# --------------------------------------------------------------------- accuracy


def mcqa(output: object, gold: object, *, yes_no: bool = False) -> list[float]:
    pred = as_str(output).lower().replace("the right answer is", "").strip()
    ref = as_str(gold).lower().replace("the right answer is", "").strip()
    allowed = "yn" if yes_no else "abcd"
    if not pred or not ref:  # the script raises IndexError here
        return [0.0, 1.0]
    ok = pred[0] in allowed and ref[0] in allowed and pred[0] == ref[0]
    return [float(ok), 1.0]


def information_extraction(output: object, gold: object) -> list[float]:
    def norm(x: object) -> str:
        return as_str(x).lower().strip().replace('"', "").replace("'", "").replace("\n", "")

    return [float(norm(gold) in norm(output)), 1.0]


def _prefixed(output: object, gold: object, prefix: str) -> list[float]:
    if is_na(output):  # `output.lower()` on NaN raises
        return [0.0, 1.0]
    want = as_str(gold).replace(".", "").replace(prefix, "").strip().lower()
    return [float(want in str(output).lower()), 1.0]


def diagnosis(output: object, gold: object) -> list[float]:
    return _prefixed(output, gold, "The diagnosis result is")


def treatment(output: object, gold: object) -> list[float]:
    return _prefixed(output, gold, "The treatment planning is:")


def nli(output: object, gold: object) -> list[float]:
    want = as_str(gold).replace(".", "").strip().lower()
    return [float(want in as_str(output).lower().strip()), 1.0]


def fact(output: object, gold: object) -> list[float]:
    if is_na(output):  # `output.split` on NaN raises
        return [0.0, 1.0]
    want = as_str(gold).replace(".", "").strip().lower()
    return [float(want in str(output).split("\n")[0].strip().lower()), 1.0]


def outcome(output: object, gold: object) -> list[float]:
    pred = as_str(output).lower().strip()
    ref = as_str(gold).lower().strip()
    if ref == "true":
        ok = "true" in pred and "false" not in pred
    elif ref == "false":
        ok = "false" in pred and "true" not in pred
    else:
        ok = False
    return [float(ok), 1.0]


# -------------------------------------------------------------------------- F1


def ner_entities(text: str) -> set[str]:
    t = text.replace(".", "").strip().lower()
    if t == "there is no related enetity":
        return set()
    return set(t[:-1].split(", "))


def ner(output: object, gold: object) -> list[float] | None:
    if is_na(output):  # `if not isinstance(output, str): continue`
        return None
    g = ner_entities(as_str(gold))
    o = ner_entities(str(output))
    return [float(len(g & o)), float(len(o - g)), float(len(g - o))]


def hoc_labels(text: object) -> list[bool]:
    low = as_str(text).lower().strip()
    return [name in low for name in HALLMARKS]


def hoc(output: object, gold: object) -> list[float]:
    pred = hoc_labels(output)
    ref = hoc_labels(gold)
    tp = [float(p and g) for p, g in zip(pred, ref)]
    fp = [float(p and not g) for p, g in zip(pred, ref)]
    fn = [float(g and not p) for p, g in zip(pred, ref)]
    return tp + fp + fn


# ---------------------------------------------------------------- text similarity


def summary_pair(output: object, gold: object) -> tuple[str, str]:
    """Summarization (and task42): every item counts; a NaN output scores 0."""
    return ("" if is_na(output) else str(output)), as_str(gold)


def explanation_pair(output: object, gold: object) -> tuple[str, str] | None:
    """Explanation: ``not isinstance(x, str)`` (NaN) -> the item is skipped."""
    if is_na(output) or is_na(gold):
        return None
    return str(output), str(gold)


def rationale_pair(output: object, gold: object) -> tuple[str, str] | None:
    """Rationale: both texts stripped; an empty (or NaN) one -> the item is skipped."""
    if is_na(output) or is_na(gold):
        return None
    hyp, ref = str(output).strip(), str(gold).strip()
    if not hyp or not ref:
        return None
    return hyp, ref


def ebms_pair(output: object, gold: object) -> tuple[str, str]:
    """task100 (EBMS): both lower-cased, "." removed from the gold only; an empty output counts and scores 0."""
    ref = as_str(gold).replace(".", "").strip().lower()
    hyp = "" if is_na(output) else str(output).strip().lower()
    return hyp, ref
