"""The cache of freed large CPU outputs: reuse is invisible in the values, bounded and releasable.

A reused buffer still holds the previous output, so every test here first fills a buffer with
one result and then checks that a different call writing into the same memory gives exactly
what a fresh allocation (or torchvision) gives.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from ovvision import ops
from tests.ops.helpers import requires_ops

pytestmark = requires_ops

# 12 masks into 1024x1024 floats: 48 MiB, above the 32 MiB threshold of the large allocator.
IMAGE = (1024, 1024)
NUM_MASKS = 12
MIB = 1 << 20


def _masks_and_boxes(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(NUM_MASKS, 1, 28, 28, generator=g)
    centre = torch.rand(NUM_MASKS, 2, generator=g) * 1024
    half = torch.rand(NUM_MASKS, 2, generator=g) * 300 + 5
    return masks, torch.cat([centre - half, centre + half], dim=1)


@pytest.fixture
def cache_limit():
    """Restore the process's cache limit and leave the cache empty after the test."""
    previous = ops.set_output_cache_limit(256 * MIB)
    ops.empty_output_cache()
    yield
    ops.set_output_cache_limit(previous)
    ops.empty_output_cache()


def test_a_freed_output_is_reused_and_fully_overwritten(cache_limit):
    masks, boxes = _masks_and_boxes(0)
    first = ops.paste_masks(torch.ones_like(masks), boxes, IMAGE)
    pointer = first.data_ptr()
    assert first.sum() > 0
    del first
    assert ops.output_cache_stats().cached_bytes >= 48 * MIB
    hits = ops.output_cache_stats().hits
    other_masks, other_boxes = _masks_and_boxes(1)
    second = ops.paste_masks(other_masks, other_boxes, IMAGE)
    assert second.data_ptr() == pointer
    assert ops.output_cache_stats().hits == hits + 1
    expected = paste_masks_in_image(other_masks, other_boxes, IMAGE)
    torch.testing.assert_close(second, expected, atol=1e-5, rtol=0)


def test_limit_zero_turns_reuse_off_and_drops_cached_buffers(cache_limit):
    out = ops.paste_masks(*_masks_and_boxes(2), IMAGE)
    del out
    assert ops.output_cache_stats().cached_bytes > 0
    ops.set_output_cache_limit(0)
    assert ops.output_cache_stats().cached_bytes == 0
    misses = ops.output_cache_stats().misses
    out = ops.paste_masks(*_masks_and_boxes(3), IMAGE)
    del out
    stats = ops.output_cache_stats()
    assert stats.misses == misses + 1 and stats.cached_bytes == 0


def test_cache_holds_at_most_its_limit_oldest_freed_first(cache_limit):
    ops.set_output_cache_limit(100 * MIB)  # room for two 48 MiB outputs, not three
    outputs = [ops.paste_masks(*_masks_and_boxes(s), IMAGE) for s in range(3)]
    del outputs
    stats = ops.output_cache_stats()
    assert 0 < stats.cached_bytes <= 100 * MIB
    assert stats.cached_bytes == 96 * MIB


def test_empty_output_cache_returns_the_bytes_it_freed(cache_limit):
    out = ops.paste_masks(*_masks_and_boxes(4), IMAGE)
    del out
    held = ops.output_cache_stats().cached_bytes
    assert held >= 48 * MIB
    assert ops.empty_output_cache() == held
    assert ops.output_cache_stats().cached_bytes == 0


def test_a_small_output_does_not_take_a_much_larger_block(cache_limit):
    big = ops.paste_masks(*_masks_and_boxes(5), (2048, 2048))  # 192 MiB
    pointer = big.data_ptr()
    del big
    small = ops.paste_masks(*_masks_and_boxes(6), IMAGE)  # 48 MiB
    assert small.data_ptr() != pointer


def test_reused_memory_gives_zeroed_roi_align_gradients(cache_limit):
    """The backward's gradient buffer is zero-filled before the scatter, also when reused."""
    grad = torch.ones(4, 256, 7, 7)
    rois = torch.tensor([[0.0, 0, 0, 40, 40], [0, 100, 100, 180, 160], [0, 5, 5, 6, 6],
                         [0, 150, 10, 199, 90]])  # fmt: skip
    shape = (1, 256, 200, 200)  # 39 MiB of float gradient
    # Leave a non-zero buffer of that size in the cache.
    dirty = ops.paste_masks(torch.ones(10, 1, 8, 8), torch.tensor([[0.0, 0, 1023, 1023]] * 10),
                            (1000, 1000))  # fmt: skip
    del dirty
    args = (1.0, 7, 7, *shape, 2, True)
    out = torch.ops.ovvision._roi_align_backward(grad, rois, *args)
    expected = torch.ops.torchvision._roi_align_backward(grad, rois, *args)
    torch.testing.assert_close(out, expected)


def test_bad_limit_raises():
    with pytest.raises(RuntimeError, match="output cache limit must be >= 0"):
        ops.set_output_cache_limit(-1)
