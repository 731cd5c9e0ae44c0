"""Log-likelihoods of continuations with a transformers causal LM (``--scoring loglik`` of the hf backend).

Tokenisation follows lm-evaluation-harness (``_encode_pair`` of ``lm_eval.api.model``): white
space at the end of the context moves to the continuation, the context is encoded alone and the
continuation's tokens are the tail of the encoded ``context + continuation``. So every option of
an item shares the same context tokens.

One forward pass of the context (batch size 1) gives its KV cache and the distribution of the
first continuation token; each option then runs its own continuation tokens (all but the last)
after that cache, which is cropped back to the context afterwards. A one-token continuation (a
letter) needs no forward pass of its own. ``reuse_cache=False`` instead runs context +
continuation from scratch for every option (the reference the cached path is tested against).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from medsbench.models.base import LoglikRequest, LoglikResponse
import inspect


def encode_pair(encode: Callable[[str], list[int]], context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) as lm-evaluation-harness splits a causal LM's input."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx):]


@dataclass
class TransformersLoglik:
    """Scores :class:`LoglikRequest`\\ s with a loaded transformers model and its encoder."""

    model: Any
    encode: Callable[[str], list[int]]  # text -> token ids, as the backend encodes prompts
    device: str = "cpu"
    context_length: int | None = None
    cache_kwarg: str = "past_key_values"  # the model's name of the KV cache argument and output
    reuse_cache: bool = True

    def __call__(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        for req in requests:
            yield self.one(req)

    def one(self, req: LoglikRequest) -> LoglikResponse:
        t0 = time.perf_counter()
        pairs = [encode_pair(self.encode, req.context, c) for c in req.continuations]
        ctx = pairs[0][0] if pairs else []
        error = self._check(req, pairs)
        if error is not None:
            return LoglikResponse(req.id, prompt_tokens=len(ctx), seconds=time.perf_counter() - t0, error=error)
        conts = [cont for _, cont in pairs]
        scores = self._cached(ctx, conts) if self.reuse_cache else [self._fresh(ctx, c) for c in conts]
        return LoglikResponse(
            req.id,
            logprobs=[s[0] for s in scores],
            tokens=[len(c) for c in conts],
            greedy=[s[1] for s in scores],
            prompt_tokens=len(ctx),
            seconds=time.perf_counter() - t0,
        )

    def _check(self, req: LoglikRequest, pairs: list[tuple[list[int], list[int]]]) -> str | None:
        if not pairs:
            return "no continuations to score"
        ctx = pairs[0][0]
        if not ctx:
            return "empty context"
        for (c, cont), text in zip(pairs, req.continuations):
            if c != ctx:  # cannot happen with encode_pair; guards the shared-cache assumption
                return "the options do not share the context's tokens"
            if not cont:
                return f"continuation {text!r} has no tokens"
        longest = len(ctx) + max(len(cont) for _, cont in pairs)
        if self.context_length and longest > self.context_length:
            return f"context and option of {longest} tokens do not fit the model context of {self.context_length}"
        return None

    def _forward(self, ids: list[int], cache: Any = None, *, last_only: bool = False) -> tuple[Any, Any]:
        """(logits of shape (len(ids) or 1, vocab), grown cache) of one batch-size-1 forward pass."""
        import torch

        kwargs: dict[str, Any] = {self.cache_kwarg: cache} if cache is not None else {}
        if last_only:
            kwargs["logits_to_keep"] = 1
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, **kwargs)
        return out.logits[0].float(), getattr(out, self.cache_kwarg, None)

    @staticmethod
    def _score(logits: Any, targets: list[int]) -> tuple[float, bool]:
        """Summed log-probability of ``targets`` under ``logits`` (one row per target), and whether
        every target is the row's top token."""
        import torch

        logp = torch.log_softmax(logits, dim=-1)
        index = torch.tensor(targets, device=logits.device)
        picked = logp.gather(1, index[:, None])[:, 0]
        greedy = bool((logp.argmax(dim=-1) == index).all())
        return float(picked.double().sum()), greedy

    def _cached(self, ctx: list[int], conts: list[list[int]]) -> list[tuple[float, bool]]:
        first, cache = self._forward(ctx, last_only=self._keeps_last())
        first = first[-1:]
        croppable = _plain_dynamic(cache)
        out = []
        for cont in conts:
            if len(cont) == 1:
                out.append(self._score(first, cont))
                continue
            after = cache if croppable else copy.deepcopy(cache)
            rest, _ = self._forward(cont[:-1], after)
            if croppable:
                cache.crop(-(len(cont) - 1))  # back to the context for the next option
            out.append(self._score(self._cat(first, rest), cont))
        return out

    def _fresh(self, ctx: list[int], cont: list[int]) -> tuple[float, bool]:
        logits, _ = self._forward(ctx + cont[:-1])
        return self._score(logits[len(ctx) - 1:], cont)

    @staticmethod
    def _cat(a: Any, b: Any) -> Any:
        import torch

        return torch.cat([a, b])

    def _keeps_last(self) -> bool:

        return "logits_to_keep" in inspect.signature(self.model.forward).parameters


def _plain_dynamic(cache: Any) -> bool:
    """True when every layer of ``cache`` is a plain dynamic layer, whose ``crop`` restores an earlier
    state exactly (sliding-window and recurrent layers do not: the options then run on copies)."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
