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


def test_window_operations_of_continuous_batching_keep_rows_right_aligned_and_padding_zero():
    """put_row / widen / drop_front / batch_select_indices / update, checked against plain tensor arithmetic."""
    import pytest

    g = torch.Generator().manual_seed(1)
    like = torch.randn(1, 2, 1, 4, generator=g)
    layer = GrowingLayer.zeros(like, rows=3, width=4, chunk=2)
    assert layer.keys.shape == (3, 2, 4, 4) and not layer.keys.any()
    k, v = torch.randn(1, 2, 3, 4, generator=g), torch.randn(1, 2, 3, 4, generator=g)
    layer.put_row(1, k, v)
    assert torch.equal(layer.keys[1, :, 1:], k[0]) and torch.equal(layer.values[1, :, 1:], v[0])
    assert not layer.keys[1, :, :1].any() and not layer.keys[0].any()
    step = torch.randn(3, 2, 1, 4, generator=g)
    layer.update(step, step)  # one decode step: every row gains a column at the end
    expected = layer.keys.clone()
    assert expected.shape[-2] == 5 and torch.equal(expected[:, :, -1:], step)
    layer.widen(3)  # a longer prompt arrives: three zero columns in front (buffer re-laid out)
    assert torch.equal(layer.keys[:, :, 3:], expected) and not layer.keys[:, :, :3].any()
    layer.drop_front(5)  # columns no live row uses any more: 3 of the 8 are left
    assert torch.equal(layer.keys, expected[:, :, 2:]) and torch.equal(layer.values[:, :, -1:], step)
    layer.widen(2)  # in place this time (room in front): the old columns there must read as zeros again
    assert not layer.keys[:, :, :2].any() and torch.equal(layer.keys[:, :, 2:], expected[:, :, 2:])
    with pytest.raises(ValueError, match="does not fit"):
        layer.put_row(0, torch.zeros(1, 2, 6, 4), torch.zeros(1, 2, 6, 4))
    fresh = torch.randn(1, 2, 2, 4, generator=g)
    layer.put_row(0, fresh, fresh)  # a new prompt in a used row: zeros before it, its cache at the end
    assert not layer.keys[0, :, :3].any() and torch.equal(layer.keys[0, :, 3:], fresh[0])
    before = layer.keys.clone()
    layer.batch_select_indices(torch.tensor([2, 0]))
    assert torch.equal(layer.keys, before[[2, 0]])
    for _ in range(5):  # grow past the buffer's room after the front moved: content kept
        before = layer.keys.clone()
        new = torch.randn(2, 2, 1, 4, generator=g)
        layer.update(new, new)
        assert torch.equal(layer.keys[:, :, :-1], before) and torch.equal(layer.keys[:, :, -1:], new)
