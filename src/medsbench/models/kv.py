"""A KV cache for the hf backend that grows in place.

transformers' ``DynamicLayer`` appends each new token with ``torch.cat``, which copies the
whole layer cache at every decode step into a fresh allocation. On a CPU those copies (and
the page faults of the fresh allocations) took ~60% of a batch-16 decode step of
SmolLM2-135M (torch profiler, bench/eval_bench.py prompts). :class:`GrowingLayer` keeps each
layer in a buffer with room to spare, writes new tokens in place and exposes ``keys`` /
``values`` as views of the filled part, so a step copies one token per row; the buffer
grows by ``chunk`` tokens when full. The numbers in the cache are the same; only where they
live changes.

For continuous batching (:meth:`medsbench.models.hf.HFBackend.iter_generate`) a layer is a
window of columns, every row right-aligned at its end (left padding before it): a new prompt's
cache is written into a free row in place (:meth:`GrowingLayer.put_row`), the window widens at
its front when a prompt is longer than it (:meth:`GrowingLayer.widen`) and drops front columns
no live row uses any more (:meth:`GrowingLayer.drop_front`), so padding does not pile up.
Padding columns hold zeros, never uninitialised memory (a masked NaN would still poison the
attention output: 0 x NaN is NaN).
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
        self._start = 0  # first column of the window in the buffers
        self._n = keys.shape[-2]  # end of the window (exclusive)
        self._k = self._with_room(keys, self._n + self.chunk)
        self._v = self._with_room(values, self._n + self.chunk)
        self._expose()

    @classmethod
    def zeros(cls, like: torch.Tensor, rows: int, width: int, chunk: int = CHUNK) -> GrowingLayer:
        """A layer of ``rows`` rows and ``width`` columns of zeros, heads and dtype as ``like`` (1, h, n, d)."""
        empty = like.new_zeros((rows, like.shape[1], width, like.shape[-1]))
        return cls(empty, empty.clone(), chunk)

    def _with_room(self, filled: torch.Tensor, size: int) -> torch.Tensor:
        buf = filled.new_empty((*filled.shape[:-2], size, filled.shape[-1]))
        buf[..., : filled.shape[-2], :] = filled
        return buf

    def _expose(self) -> None:
        self.keys = self._k[..., self._start : self._n, :]
        self.values = self._v[..., self._start : self._n, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        new = key_states.shape[-2]
        if self._n + new > self._k.shape[-2]:
            size = self._n - self._start + max(new, self.chunk)
            self._k = self._with_room(self._k[..., self._start : self._n, :], size)
            self._v = self._with_room(self._v[..., self._start : self._n, :], size)
            self._n -= self._start
            self._start = 0
        self._k[..., self._n : self._n + new, :] = key_states
        self._v[..., self._n : self._n + new, :] = value_states
        self._n += new
        self._expose()
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative number of tokens to remove")
        self._n = max(self._start, self._n - abs(tokens_to_remove))
        self._expose()

    def put_row(self, row: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Write one prompt's cache (1, h, m, d) into batch row ``row``, right-aligned at the window's end,
        zeros before it; ``m`` must not exceed the window (:meth:`widen` it first)."""
        m = keys.shape[-2]
        left = self._n - m
        if left < self._start:
            raise ValueError(f"a row of {m} tokens does not fit a window of {self._n - self._start}")
        self._k[row, :, self._start : left].zero_()
        self._v[row, :, self._start : left].zero_()
        self._k[row, :, left : self._n] = keys[0]
        self._v[row, :, left : self._n] = values[0]

    def widen(self, extra: int) -> None:
        """``extra`` columns of zeros at the window's front (every row keeps its place at the end)."""
        if extra <= 0:
            return
        if self._start >= extra:
            self._start -= extra
            self._k[..., self._start : self._start + extra, :].zero_()
            self._v[..., self._start : self._start + extra, :].zero_()
        else:
            width = self._n - self._start
            for name in ("_k", "_v"):
                old = getattr(self, name)
                buf = old.new_zeros((*old.shape[:-2], extra + width + self.chunk, old.shape[-1]))
                buf[..., extra : extra + width, :] = old[..., self._start : self._n, :]
                setattr(self, name, buf)
            self._start, self._n = 0, extra + width
        self._expose()

    def drop_front(self, columns: int) -> None:
        """Forget the window's first ``columns`` columns (padding no live row needs any more)."""
        self._start = min(self._n, self._start + max(0, columns))
        self._expose()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        # copies the selected rows from the window's start on (spare room included), not the dropped front
        self._k = self._k[:, :, self._start :].index_select(0, indices)
        self._v = self._v[:, :, self._start :].index_select(0, indices)
        self._n -= self._start
        self._start = 0
        self._expose()

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._k = self._k[:, :, self._start :].repeat_interleave(repeats, dim=0)
        self._v = self._v[:, :, self._start :].repeat_interleave(repeats, dim=0)
        self._n -= self._start
        self._start = 0
        self._expose()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.batch_select_indices(beam_idx.to(self._k.device))

    def offload(self) -> None:  # buffers stay where they are (the hf backend never offloads)
        return None

    def prefetch(self) -> None:
        return None

    def reset(self) -> None:
        self._start = self._n = 0
        self._expose()


def growing_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], chunk: int = CHUNK) -> DynamicCache:
    """A ``DynamicCache`` holding ``layers`` (one (keys, values) pair per decoder layer) in growing layers."""
    cache = DynamicCache()
    cache.layers = [GrowingLayer(k, v, chunk) for k, v in layers]
    return cache


def window_cache(like: DynamicCache, rows: int, width: int, chunk: int = CHUNK) -> DynamicCache:
    """A ``DynamicCache`` of ``rows`` empty rows and ``width`` columns, shaped like ``like``'s layers."""
    cache = DynamicCache()
    cache.layers = [GrowingLayer.zeros(layer.keys, rows, width, chunk) for layer in like.layers]  # type: ignore[union-attr,arg-type]
    return cache
