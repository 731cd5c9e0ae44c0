"""medsbench.models.kv: the in-place growing KV cache holds exactly what transformers' DynamicLayer holds."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from medsbench.models.kv import GrowingLayer, growing_cache


def _pair(layer_a, layer_b):
    assert layer_a.get_seq_length() == layer_b.get_seq_length()
    assert torch.equal(layer_a.keys, layer_b.keys) and torch.equal(layer_a.values, layer_b.values)


def test_growing_layer_matches_dynamic_layer_through_every_operation():
    g = torch.Generator().manual_seed(0)
    k0, v0 = torch.randn(3, 2, 5, 4, generator=g), torch.randn(3, 2, 5, 4, generator=g)
    ref = DynamicLayer()
    ref.update(k0, v0)
    grow = GrowingLayer(k0, v0, chunk=3)  # a small chunk: the buffer must grow several times
    _pair(ref, grow)
    for step in range(9):  # one token at a time, then a block of 4 (bigger than the chunk)
        n = 4 if step == 6 else 1
        k, v = torch.randn(3, 2, n, 4, generator=g), torch.randn(3, 2, n, 4, generator=g)
        out_ref, out_grow = ref.update(k, v), grow.update(k, v)
        assert all(torch.equal(a, b) for a, b in zip(out_ref, out_grow))
        _pair(ref, grow)
    keep = torch.tensor([2, 0])
    ref.batch_select_indices(keep)
    grow.batch_select_indices(keep)
    _pair(ref, grow)
    ref.crop(-2)
    grow.crop(-2)
    _pair(ref, grow)
    ref.batch_repeat_interleave(2)
    grow.batch_repeat_interleave(2)
    _pair(ref, grow)
    k, v = torch.randn(4, 2, 1, 4, generator=g), torch.randn(4, 2, 1, 4, generator=g)
    ref.update(k, v)
    grow.update(k, v)
    _pair(ref, grow)
    # writing in place never changes what an earlier view returned for the filled part
    before = grow.keys.clone()
    grow.update(k, v)
    assert torch.equal(grow.keys[..., : before.shape[-2], :], before)


def test_growing_cache_has_one_layer_per_pair_and_reports_lengths():
    pairs = [(torch.zeros(2, 1, 7, 3), torch.ones(2, 1, 7, 3)) for _ in range(4)]
    cache = growing_cache(pairs)
    assert len(cache.layers) == 4 and cache.get_seq_length() == 7
    cache.update(torch.zeros(2, 1, 1, 3), torch.ones(2, 1, 1, 3), 0)
    assert cache.layers[0].get_seq_length() == 8 and cache.layers[1].get_seq_length() == 7
