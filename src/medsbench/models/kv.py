"""A KV cache for the hf backend that grows in place.

transformers' ``DynamicLayer`` appends each new token with ``torch.cat``, which copies the
whole layer cache at every decode step into a fresh allocation. On a CPU those copies (and
the page faults of the fresh allocations) took ~60% of a batch-16 decode step of
SmolLM2-135M (torch profiler, bench/eval_bench.py prompts). :class:`GrowingLayer` keeps each
layer in a buffer with room to spare, writes new tokens in place and exposes ``keys`` /
``values`` as views of the filled part, so a step copies one token per row; the buffer
grows by ``chunk`` tokens when full. The numbers in the cache are the same; only where they
live changes.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

CHUNK = 128  # tokens of room added at a time


class GrowingLayer(DynamicLayer):
    """A :class:`transformers.cache_utils.DynamicLayer` whose tensors are views into a larger buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, chunk: int = CHUNK):
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self.chunk = int(chunk)
        self._n = keys.shape[-2]
        self._k = self._with_room(keys, self._n + self.chunk)
        self._v = self._with_room(values, self._n + self.chunk)
        self._expose()

    def _with_room(self, filled: torch.Tensor, size: int) -> torch.Tensor:
        buf = filled.new_empty((*filled.shape[:-2], size, filled.shape[-1]))
        buf[..., : filled.shape[-2], :] = filled
        return buf

    def _expose(self) -> None:
        self.keys = self._k[..., : self._n, :]
        self.values = self._v[..., : self._n, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        new = key_states.shape[-2]
        if self._n + new > self._k.shape[-2]:
            size = self._n + max(new, self.chunk)
            self._k = self._with_room(self._k[..., : self._n, :], size)
            self._v = self._with_room(self._v[..., : self._n, :], size)
        self._k[..., self._n : self._n + new, :] = key_states
        self._v[..., self._n : self._n + new, :] = value_states
        self._n += new
        self._expose()
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative number of tokens to remove")
        self._n = max(0, self._n - abs(tokens_to_remove))
        self._expose()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._k = self._k[indices, ...]
        self._v = self._v[indices, ...]
        self._expose()

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._k = self._k.repeat_interleave(repeats, dim=0)
        self._v = self._v.repeat_interleave(repeats, dim=0)
        self._expose()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.batch_select_indices(beam_idx.to(self._k.device))

    def offload(self) -> None:  # buffers stay where they are (the hf backend never offloads)
        return None

    def prefetch(self) -> None:
        return None

    def reset(self) -> None:
        self._n = 0
        self._expose()


def growing_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], chunk: int = CHUNK) -> DynamicCache:
    """A ``DynamicCache`` holding ``layers`` (one (keys, values) pair per decoder layer) in growing layers."""
    cache = DynamicCache()
    cache.layers = [GrowingLayer(k, v, chunk) for k, v in layers]
    return cache
