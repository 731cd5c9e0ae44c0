"""Prices of model tokens: one concept for the evaluated model (``results.json``'s cost) and the judges.

A :class:`Price` is USD per million prompt (input) and completion (output) tokens, written
``IN/OUT`` on a command line (``--price 2.5/10``, as ``medsbench judge`` has always taken it). A
:class:`PriceTable` (``--prices FILE``, YAML or JSON) maps a model name or spec pattern to a price::

    openai:gpt-4o-mini*: {input: 0.15, output: 0.6}
    gpt-4o: {input: 2.5, output: 10}

:meth:`PriceTable.lookup` takes a model's spec string (redacted, e.g. ``openai:gpt-4o,base_url=...``)
and its model name (the spec's target, e.g. ``gpt-4o``): a key equal to either wins; otherwise the
longest glob pattern (``fnmatch``, case-sensitive) matching either; ties go to the first in the file.
A price is what a score or judge run is priced at, not what the run measured: it is never part of an
``EvalConfig``. Costs are computed only from known token counts (:meth:`Price.cost` returns None
when either count is unknown): a cost is never made up from a missing count.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medsbench.errors import MedsbenchError
from medsbench.settings import read_settings

PER_TOKENS = 1_000_000  # prices are USD per this many tokens


class Price(BaseModel):
    """USD per million prompt and completion tokens, and where the price came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="USD per 1M prompt (input) tokens")
    output: float = Field(ge=0, description="USD per 1M completion (output) tokens")
    source: str | None = Field(None, description="--price, or the --prices file and the key that matched")

    @classmethod
    def parse(cls, value: str, flag: str = "--price") -> Price:
        """``IN/OUT`` (USD per million tokens, e.g. ``2.5/10``)."""
        head, sep, tail = value.partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(input=float(head), output=float(tail), source=f"{flag} {value}")
        except (ValueError, ValidationError):
            raise MedsbenchError(f"{flag} must be IN/OUT in USD per million tokens (e.g. 2.5/10), got '{value}'") from None

    def cost(self, prompt_tokens: int | None, output_tokens: int | None) -> float | None:
        """USD for these token counts; None when either is unknown."""
        if prompt_tokens is None or output_tokens is None:
            return None
        return round((prompt_tokens * self.input + output_tokens * self.output) / PER_TOKENS, 6)


class PriceTable:
    """A ``--prices`` file: model name or spec pattern -> :class:`Price` (see the module docstring)."""

    def __init__(self, prices: dict[str, Price], where: str = "prices"):
        self.prices = dict(prices)
        self.where = where

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PriceTable:
        """Read a YAML or JSON price table; a bad entry is one line naming the file and the key."""
        p = Path(path)
        try:
            data = read_settings(p, "price table")
        except UnicodeDecodeError as exc:
            raise MedsbenchError(f"not a readable price table: {exc}", where=str(p)) from None
        return cls.from_mapping(data, str(p))

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> PriceTable:
        if not isinstance(data, dict) or not data:
            raise MedsbenchError("a price table maps model names or patterns to {input: USD per 1M, output: USD per 1M}",
                                 where=where)
        prices: dict[str, Price] = {}
        for key, value in data.items():
            if not isinstance(key, str) or not key.strip():
                raise MedsbenchError(f"price table key {key!r} is not a model name or pattern", where=where)
            if not isinstance(value, dict):
                raise MedsbenchError(f"{key}: expected {{input: USD per 1M, output: USD per 1M}}", where=where)
            try:
                prices[key] = Price(**value, source=f"{where}: {key}")
            except (ValidationError, TypeError) as exc:
                why = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
                field = ".".join(str(x) for x in why.get("loc", ()))
                raise MedsbenchError(f"{key}: {field + ': ' if field else ''}{why.get('msg')}", where=where) from None
        return cls(prices, where)

    def lookup(self, *names: str | None) -> Price | None:
        """The price of the first exact key among ``names``, else of the longest pattern matching any of them."""
        given = [n for n in names if n]
        for name in given:
            if name in self.prices:
                return self.prices[name]
        best: tuple[int, int, str] | None = None
        for order, key in enumerate(self.prices):
            if any(fnmatch.fnmatchcase(name, key) for name in given):
                rank = (-len(key), order, key)
                best = rank if best is None or rank < best else best
        return None if best is None else self.prices[best[2]]


def resolve_price(price: str | None, prices: str | os.PathLike[str] | None) -> Price | PriceTable | None:
    """What ``--price IN/OUT`` and ``--prices FILE`` give (one of them, or neither)."""
    if price is not None and prices is not None:
        raise MedsbenchError("give --price IN/OUT or --prices FILE, not both")
    if price is not None:
        return Price.parse(price)
    return PriceTable.load(prices) if prices is not None else None


def price_for(given: Price | PriceTable | None, *names: str | None) -> Price | None:
    """The price of a model (its spec string and model name) from ``--price`` or a ``--prices`` table."""
    if given is None or isinstance(given, Price):
        return given
    return given.lookup(*names)
