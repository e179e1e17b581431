"""Outputs of 32 MiB and more: mapped fresh from the kernel (zero-filled), and a paste into them
writes only the rows its boxes reach. Their values must equal torchvision's exactly like those of
small outputs, also when the same memory has just held another result."""

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


def _masks_and_boxes(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(NUM_MASKS, 1, 28, 28, generator=g)
    centre = torch.rand(NUM_MASKS, 2, generator=g) * 1024
    half = torch.rand(NUM_MASKS, 2, generator=g) * 300 + 5
    return masks, torch.cat([centre - half, centre + half], dim=1)


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_large_pastes_match_torchvision(threshold):
    masks, boxes = _masks_and_boxes(0)
    out = ops.paste_masks(masks, boxes, IMAGE, threshold=threshold)
    expected = paste_masks_in_image(masks, boxes, IMAGE)
    if threshold is None:
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    else:
        decided = (expected - threshold).abs() > 1e-5
        assert torch.equal(out[decided], (expected >= threshold)[decided])
    assert out.any() and not out.all()


def test_a_large_paste_after_a_freed_one_holds_no_old_values():
    whole_image = torch.tensor([[0.0, 0, 1023, 1023]] * NUM_MASKS)
    first = ops.paste_masks(torch.ones(NUM_MASKS, 1, 28, 28), whole_image, IMAGE)
    assert first.min() > 0.2  # every pixel written with a non-zero value
    del first
    masks, boxes = _masks_and_boxes(1)
    second = ops.paste_masks(masks, boxes, IMAGE)
    torch.testing.assert_close(second, paste_masks_in_image(masks, boxes, IMAGE), atol=1e-5, rtol=0)


def test_large_roi_align_gradients_are_zero_outside_the_rois():
    grad = torch.ones(2, 256, 7, 7)
    rois = torch.tensor([[0.0, 10, 10, 50, 40], [0, 120, 100, 190, 180]])
    args = (1.0, 7, 7, 1, 256, 200, 200, 2, True)  # 39 MiB of float gradient
    out = torch.ops.ovvision._roi_align_backward(grad, rois, *args)
    torch.testing.assert_close(out, torch.ops.torchvision._roi_align_backward(grad, rois, *args))
