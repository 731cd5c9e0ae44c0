"""The options of a closed-answer task for likelihood scoring (``--scoring loglik``).

The task's :class:`~medsbench.metrics.registry.Scorer` knows its answers, so the option strings
come from it (see :mod:`medsbench.records.loglik` for the context/continuation layout):

- **MCQA** (scorer ``mcqa``): the lettered options parsed from the item's input
  (:func:`medsbench.metrics.strict.parse_options`); variants ``letter`` (``"B"``, primary) and
  ``text`` (``"B: <option text>"``).
- **other closed-label tasks** (PubMedQA yes/no, fact verification, NLI, clinical outcome,
  diagnosis, treatment): the task's label set (the scorer's labels, the catalog's and the labels
  of the full test file's golds, :func:`medsbench.metrics.score.task_label_set`), each written as
  the task's golds write it (their most frequent form; a label no gold uses: as the scorer or
  catalog spells it); one variant, ``text``.

The answer lead-in is the part every gold of the full test file starts with, up to a known
answer phrase ("The right answer is", or the scorer's answer prefix such as "The diagnosis result
is"); golds that are bare labels have none. The output written for a chosen option is
``lead + delimiter + text continuation`` and must read back, under the task's own scorer, as that
option (checked for every option of every item: an item whose options do not is failed with the
reason, never scored wrongly).

Free-text, span (NER, information extraction) and multi-label (HoC) tasks have no options:
:func:`task_choices` refuses them in one line.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medsbench.errors import MedsbenchError
from medsbench.metrics import strict as S
from medsbench.metrics.registry import KINDS, Scorer, scorer_for_task
from medsbench.metrics.score import task_file_golds, task_label_set
from medsbench.records.loglik import ItemChoices
from medsbench.records.predictions import PredictionRow

ItemOptions = Callable[[str | None], "ItemChoices | str"]  # an item's input -> its options, or why it has none
_RIGHT_ANSWER = re.compile(r"the right answer is", re.IGNORECASE)


def loglik_scorer(task_id: str, category: str) -> Scorer:
    """The scorer of a task that likelihood scoring can answer; refuses any other task in one line."""
    scorer = scorer_for_task(task_id, category)
    if scorer is None:
        raise MedsbenchError(f"--scoring loglik: {task_id} has no known scorer (category '{category}')")
    if scorer.is_text:
        raise MedsbenchError(f"--scoring loglik: {task_id} ({category}) is free text, it has no options to score; "
                             "select closed-answer tasks (mcqa, fact_verification, nli, ...) or use --scoring generate")
    if scorer.name != "mcqa" and not (scorer.reference_kind == "accuracy" and (scorer.labels or scorer.extensible_labels)):
        raise MedsbenchError(f"--scoring loglik: {task_id} ({category}, scorer {scorer.name}) has no single closed "
                             "answer to choose (spans or several labels); use --scoring generate")
    return scorer


def answer_lead(golds: list[str], scorer: Scorer) -> str:
    """The lead-in every gold starts with, ending at a known answer phrase ("" when there is none)."""
    golds = [g.strip() for g in golds if g and g.strip()]
    if not golds:
        return ""
    common = os.path.commonprefix(golds)
    if any(len(g) == len(common) for g in golds):  # a gold that is all lead-in: no label after it
        common = common[: common.rfind(" ") + 1] if " " in common else ""
    lead = common.rstrip()
    phrases = [_RIGHT_ANSWER] + ([scorer.answer_prefix] if scorer.answer_prefix is not None else [])
    while lead:
        if any(re.search(f"(?:{p.pattern})\\s*$", lead, p.flags) for p in phrases):
            return lead
        cut = lead.rfind(" ")
        lead = lead[:cut].rstrip() if cut > 0 else ""
    return ""


def task_choices(task_id: str, category: str, test_file: str | os.PathLike[str]) -> ItemOptions:
    """The options of every item of a task (input text -> :class:`ItemChoices`, or the reason an item
    has none); ``test_file`` is the task's full test file (its golds give the lead-in and labels)."""
    scorer = loglik_scorer(task_id, category)
    golds = task_file_golds(Path(test_file))
    lead = answer_lead(golds, scorer)
    delimiter = " " if lead else ""
    if scorer.name == "mcqa":
        return lambda text: _mcqa_item(scorer, text, lead, delimiter)
    found = _closed_choices(scorer, task_id, golds, lead, delimiter)
    checked = found if isinstance(found, str) else _checked(scorer, found, None, found.options)
    return lambda text: checked


def _mcqa_item(scorer: Scorer, text: str | None, lead: str, delimiter: str) -> ItemChoices | str:
    options = S.parse_options(text)
    if len(options) < 2:
        return "no lettered options (A. ..., B. ...) in the item's input"
    letters = tuple(options)
    full = tuple(f"{k}: {v}" for k, v in options.items())
    answers = tuple(_answer(lead, delimiter, f) for f in full)
    choices = ItemChoices(letters, {"letter": letters, "text": full}, answers, "letter", lead, delimiter)
    return _checked(scorer, choices, text, ())


def _closed_choices(scorer: Scorer, task_id: str, golds: list[str], lead: str, delimiter: str) -> ItemChoices | str:
    warnings: list[str] = []
    labels, _ = task_label_set(scorer, task_id, [], golds, warnings)
    written: dict[str, Counter[str]] = {}
    for gold in golds:
        label = scorer.label_of(gold)
        if label:
            form = gold.strip()[len(lead):].strip().rstrip(".").strip() if lead else gold.strip().rstrip(".").strip()
            written.setdefault(label, Counter())[form] += 1
    spelled = {S.label_set([x])[0]: x for x in scorer.labels if S.label_set([x])}
    forms = tuple(written[lab].most_common(1)[0][0] if lab in written else spelled.get(lab, lab) for lab in labels)
    if len(labels) < 2:
        return f"{len(labels)} label(s) known for {task_id}: nothing to choose between"
    answers = tuple(_answer(lead, delimiter, f) for f in forms)
    return ItemChoices(tuple(labels), {"text": forms}, answers, "text", lead, delimiter)


def _answer(lead: str, delimiter: str, continuation: str) -> str:
    return f"{lead}{delimiter}{continuation}".strip()


def _checked(scorer: Scorer, choices: ItemChoices, text: str | None, labels: tuple[str, ...]) -> ItemChoices | str:
    """``choices`` when each option's answer reads back, under the task's scorer, as that option
    (and as no other); else the reason."""
    assert scorer.strict is not None
    verdict = KINDS[scorer.strict_kind].verdict
    assert verdict is not None
    for option, answer in zip(choices.options, choices.answers):
        for gold_option, gold in zip(choices.options, choices.answers):
            row = PredictionRow(task_id="check", output=answer, reference=gold, input=text)
            stats, _ = scorer.strict(row, labels)
            if bool(verdict(np.asarray(stats))) != (option == gold_option):
                return f"option {option!r} written as {answer[:60]!r} does not read back as that option under {scorer.name}"
    return choices
