"""Likelihood scoring in the runner (``--scoring loglik``): cache settings and per-option records.

The metrics stage gives each item its options (:class:`medsbench.records.loglik.ItemChoices`,
through ``RunOptions.choices``: this package never imports :mod:`medsbench.metrics`); the
backend scores every option's continuation after the item's context
(:meth:`medsbench.models.base.BaseBackend.loglikelihood`); here the scores become the row's
:class:`~medsbench.records.loglik.OptionScores` and its output (the chosen option's answer).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.models.base import LoglikRequest, LoglikResponse
from medsbench.records.loglik import ItemChoices, OptionScores, VariantScores

#: (task id, category, full test file) -> (item input -> its options, or why it has none); raises
#: MedsbenchError for a task without closed answers. medsbench.pipeline passes
#: medsbench.metrics.choices.task_choices.
ItemOptions = Callable[[str | None], "ItemChoices | str"]
ChoicesFn = Callable[[str, str, Path], ItemOptions]


def loglik_config(choices: ItemChoices) -> dict[str, Any]:
    """The scoring settings hashed into a loglik item's cache key (besides backend identity and prompt):
    the mode, the lead-in and every scored string, so a cached generation is never taken for it."""
    return {"scoring": "loglik", "lead": choices.lead, "continuations": list(choices.scored())}


def loglik_request(key: str, text: str, choices: ItemChoices) -> LoglikRequest:
    return LoglikRequest(id=key, context=text + choices.lead, continuations=choices.scored())


def option_scores(choices: ItemChoices, resp: LoglikResponse) -> tuple[OptionScores, str]:
    """The row's per-option scores and its output (the answer of the primary variant's best option)."""
    scored = choices.scored()
    if len(resp.logprobs) != len(scored):
        raise MedsbenchError(f"the backend returned {len(resp.logprobs)} log-likelihoods for {len(scored)} continuations")
    at = {s: i for i, s in enumerate(scored)}
    variants = {}
    for name, conts in choices.variants.items():
        pos = [at[choices.delimiter + c] for c in conts]
        variants[name] = VariantScores(
            continuations=list(conts),
            logprobs=[float(resp.logprobs[i]) for i in pos],
            tokens=[int(resp.tokens[i]) for i in pos] if len(resp.tokens) == len(scored) else [],
        )
    scores = OptionScores(options=list(choices.options), lead=choices.lead, delimiter=choices.delimiter,
                          primary=choices.primary, variants=variants)
    return scores, choices.answers[scores.chosen()]
