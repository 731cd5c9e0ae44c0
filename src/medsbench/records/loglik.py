"""Likelihood scoring records: the options of one closed-answer item and their log-likelihoods.

With ``--scoring loglik`` (:attr:`medsbench.records.config.EvalConfig.scoring`) an item is not
generated: every option's *continuation* is scored after the item's *context* and the option with
the highest log-likelihood becomes the row's ``output`` (in the gold answer's own form, so every
scorer reads it unchanged). :class:`ItemChoices` is what the metrics stage
(:mod:`medsbench.metrics.choices`) hands the runner for one item; :class:`OptionScores` is what the
runner records in :attr:`medsbench.records.predictions.PredictionRow.loglik`.

Strings, for an item whose rendered prompt is ``P``:

- context = ``P + lead`` (``lead``: the answer lead-in every gold answer of the task starts with,
  e.g. ``"The right answer is"``; empty when the golds are bare labels);
- the scored string of an option = ``delimiter + continuation`` (``delimiter``: ``" "`` after a
  lead-in, ``""`` when the context already ends in white space);
- variants: ``letter`` (MCQA: the option's letter, ``"B"``) and ``text`` (MCQA: ``"B: <option
  text>"``, the gold answers' form; other closed tasks: the label as the task's golds write it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field, model_validator

from medsbench.records.base import Record

VARIANTS = ("letter", "text")


@dataclass(frozen=True)
class ItemChoices:
    """The options of one item, as the runner scores them."""

    options: tuple[str, ...]  # option keys: letters (MCQA) or labels, as the task's scorer reads them
    variants: dict[str, tuple[str, ...]]  # variant -> continuation per option (without the delimiter)
    answers: tuple[str, ...]  # the output written when an option is chosen (the gold answers' form)
    primary: str  # the variant whose choice is the output
    lead: str = ""
    delimiter: str = ""

    def scored(self) -> tuple[str, ...]:
        """Every distinct scored string (delimiter + continuation) of every variant, in order."""
        return tuple(dict.fromkeys(self.delimiter + c for v in self.variants.values() for c in v))


class VariantScores(Record):
    continuations: list[str]  # one per option, without the delimiter (lm-eval's choice strings)
    logprobs: list[float]  # log p(delimiter + continuation | context), summed over its tokens
    tokens: list[int] = Field(default_factory=list)  # continuation tokens per option (the backend's tokenizer)

    @model_validator(mode="after")
    def _aligned(self) -> VariantScores:
        if len(self.logprobs) != len(self.continuations) or (self.tokens and len(self.tokens) != len(self.logprobs)):
            raise ValueError("one log-likelihood (and token count) per continuation")
        if not all(math.isfinite(x) and x <= 1e-6 for x in self.logprobs):
            raise ValueError("log-likelihoods must be finite and <= 0")
        return self


class OptionScores(Record):
    """The per-option log-likelihoods of one item (``PredictionRow.loglik``)."""

    options: list[str]
    lead: str = ""
    delimiter: str = ""
    primary: str
    variants: dict[str, VariantScores]

    @model_validator(mode="after")
    def _shape(self) -> OptionScores:
        if len(self.options) < 2 or len(set(self.options)) != len(self.options):
            raise ValueError("at least two distinct options")
        if self.primary not in self.variants:
            raise ValueError(f"primary variant {self.primary!r} has no scores")
        for name, v in self.variants.items():
            if name not in VARIANTS:
                raise ValueError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
            if len(v.logprobs) != len(self.options):
                raise ValueError(f"variant {name}: {len(v.logprobs)} log-likelihoods for {len(self.options)} options")
        return self

    def chosen(self, variant: str | None = None) -> int:
        """Index of the option with the highest log-likelihood (first on ties, like numpy's argmax)."""
        lls = self.variants[variant or self.primary].logprobs
        return max(range(len(lls)), key=lambda i: (lls[i], -i))
