"""paste_masks against torchvision's paste_masks_in_image and the plain PyTorch reference."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from ovvision.ops import paste_masks, paste_masks_reference
from tests.ops.helpers import requires_ops

pytestmark = requires_ops

HEIGHT, WIDTH = 37, 53


def _masks_and_boxes(num: int, seed: int, mask_size: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes of 1 to 40 pixels, many of them crossing the image border.

    Centres stay inside the image: torchvision's paste_masks_in_image fails on most boxes that
    miss the image (its slice ends go negative), so the comparison with it cannot include
    those; test_boxes_fully_outside_paste_nothing covers them.
    """
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(num, 1, mask_size, mask_size, generator=g)
    center = torch.rand(num, 2, generator=g) * torch.tensor([WIDTH, HEIGHT])
    half = torch.rand(num, 2, generator=g) * 20 + 0.5
    return masks, torch.cat([center - half, center + half], dim=1)


@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torchvision_including_boxes_crossing_the_border(seed, padding):
    masks, boxes = _masks_and_boxes(40, seed)
    expected = paste_masks_in_image(masks, boxes, (HEIGHT, WIDTH), padding=padding)
    out = paste_masks(masks, boxes, (HEIGHT, WIDTH), padding=padding)
    assert out.shape == expected.shape == (40, 1, HEIGHT, WIDTH)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_matches_torchvision_in_float64():
    masks, boxes = _masks_and_boxes(20, 2)
    masks, boxes = masks.double(), boxes.double()
    expected = paste_masks_in_image(masks, boxes, (HEIGHT, WIDTH))
    torch.testing.assert_close(paste_masks(masks, boxes, (HEIGHT, WIDTH)), expected)


def test_threshold_gives_the_thresholded_torchvision_masks():
    masks, boxes = _masks_and_boxes(30, 3)
    values = paste_masks_in_image(masks, boxes, (HEIGHT, WIDTH))
    out = paste_masks(masks, boxes, (HEIGHT, WIDTH), threshold=0.5)
    assert out.dtype == torch.bool
    decided = (values - 0.5).abs() > 1e-5  # leave out values within rounding of the threshold
    assert torch.equal(out[decided], (values >= 0.5)[decided])
    assert out.any() and not out.all()


def test_boxes_fully_outside_paste_nothing():
    masks = torch.ones(4, 1, 8, 8)
    boxes = torch.tensor(
        [
            [-30.0, 5, -12, 20],
            [5, -40, 20, -15],
            [WIDTH + 3.0, 5, WIDTH + 20, 9],
            [4, HEIGHT + 10, 9, 60],
        ]
    )
    out = paste_masks(masks, boxes, (HEIGHT, WIDTH))
    assert not out.any()
    torch.testing.assert_close(out, paste_masks_reference(masks, boxes, (HEIGHT, WIDTH)))


def test_degenerate_and_tiny_boxes_match_the_reference():
    masks = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    boxes = torch.tensor(
        [[10.0, 10, 10, 10], [20, 5, 18, 9], [3.2, 4.7, 3.9, 5.1], [0, 0, 0.5, 40], [-1, -1, 1, 1]]
    )
    out = paste_masks(masks, boxes, (HEIGHT, WIDTH))
    torch.testing.assert_close(
        out, paste_masks_reference(masks, boxes, (HEIGHT, WIDTH)), atol=1e-5, rtol=0
    )


def test_non_square_masks_match_the_reference():
    g = torch.Generator().manual_seed(5)
    masks = torch.rand(12, 1, 9, 16, generator=g)
    _, boxes = _masks_and_boxes(12, 5)
    out = paste_masks(masks, boxes, (HEIGHT, WIDTH))
    torch.testing.assert_close(
        out, paste_masks_reference(masks, boxes, (HEIGHT, WIDTH)), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_masks(dtype):
    masks, boxes = _masks_and_boxes(10, 6)
    expected = paste_masks_in_image(masks.to(dtype).float(), boxes, (HEIGHT, WIDTH))
    out = paste_masks(masks.to(dtype), boxes, (HEIGHT, WIDTH))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, atol=4e-3, rtol=0)


def test_no_masks_and_empty_images():
    out = paste_masks(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (HEIGHT, WIDTH))
    assert out.shape == (0, 1, HEIGHT, WIDTH)
    masks, boxes = _masks_and_boxes(3, 7)
    assert paste_masks(masks, boxes, (0, WIDTH)).shape == (3, 1, 0, WIDTH)
    assert paste_masks(masks, boxes, (HEIGHT, WIDTH), threshold=0.5).shape == (3, 1, HEIGHT, WIDTH)


def test_reference_fallback_matches_the_kernel():
    masks, boxes = _masks_and_boxes(25, 8)
    for threshold in (None, 0.3):
        out = paste_masks(masks, boxes, (HEIGHT, WIDTH), threshold=threshold)
        ref = paste_masks_reference(masks, boxes, (HEIGHT, WIDTH), threshold=threshold)
        if threshold is None:
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        else:
            assert (out != ref).float().mean() < 1e-3


@pytest.mark.parametrize(
    ("masks", "boxes", "match"),
    [
        (torch.zeros(2, 28, 28), torch.zeros(2, 4), r"`masks` must have shape \(N, 1, M_h, M_w\)"),
        (torch.zeros(2, 1, 28, 28), torch.zeros(3, 4), r"`boxes` must have shape \(N, 4\)"),
        (torch.zeros(2, 1, 28, 28), torch.zeros(2, 5), r"`boxes` must have shape \(N, 4\)"),
        (torch.zeros(2, 1, 28, 28, dtype=torch.long), torch.zeros(2, 4), "`masks` must be a float"),
        (torch.zeros(2, 1, 0, 28), torch.zeros(2, 4), "`masks` must not be empty"),
        (
            torch.zeros(2, 1, 28, 28),
            torch.tensor([[0, 0, 5, 5], [0, 0, float("nan"), 3]]),
            "`boxes` must be finite",
        ),
    ],
)
def test_bad_arguments_raise_naming_the_argument(masks, boxes, match):
    with pytest.raises(RuntimeError, match=match):
        torch.ops.ovvision.paste_masks(masks, boxes, 10, 10)
    with pytest.raises(RuntimeError, match="`padding` must be non-negative"):
        torch.ops.ovvision.paste_masks(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4), 10, 10, -1)


def test_opcheck():
    masks, boxes = _masks_and_boxes(6, 9)
    for threshold in (None, 0.5):
        torch.library.opcheck(
            torch.ops.ovvision.paste_masks.default, (masks, boxes, 20, 30, 1, threshold)
        )
