"""paste_masks' exact-box mode equals the detector's former grid-sample paste.

Until issue 16 the detector pasted its masks with its own ``F.grid_sample`` function; it now calls
``ovvision.ops.paste_masks(..., exact_box=True)``. ``grid_sample_paste`` (tests/ops/helpers.py) is
that function as it was (its one change: ``threshold=None`` returns the sampled values), kept
only as the reference the mode must reproduce.
"""

from __future__ import annotations

import pytest
import torch

from ovvision.ops import paste_masks, paste_masks_reference
from tests.ops.helpers import grid_sample_paste, requires_ops

pytestmark = requires_ops

HEIGHT, WIDTH = 41, 57


def _masks_and_boxes(num: int, seed: int, mask_hw: tuple[int, int] = (28, 28)):
    """Boxes of 0.2 to 50 pixels, many crossing the border, some outside, a few degenerate."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(num, *mask_hw, generator=g)
    center = torch.rand(num, 2, generator=g) * torch.tensor([WIDTH + 20, HEIGHT + 20]) - 10
    half = torch.rand(num, 2, generator=g) ** 2 * 25 + 0.1
    boxes = torch.cat([center - half, center + half], dim=1)
    boxes[0] = torch.tensor([10.0, 12.0, 10.0, 12.0])  # zero area
    boxes[1] = torch.tensor([20.0, 5.0, 18.0, 9.0])  # x2 < x1
    boxes[2] = torch.tensor([-5.0, -5.0, WIDTH + 5.0, HEIGHT + 5.0])  # covers the image
    return masks, boxes


def _exact(masks: torch.Tensor, boxes: torch.Tensor, threshold: float | None) -> torch.Tensor:
    out = paste_masks(masks[:, None], boxes, (HEIGHT, WIDTH), threshold=threshold, exact_box=True)
    assert out.shape == (len(masks), 1, HEIGHT, WIDTH)
    return out[:, 0]


@pytest.mark.parametrize("mask_hw", [(28, 28), (7, 12)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_equal_thegrid_sample_paste(seed, mask_hw):
    masks, boxes = _masks_and_boxes(60, seed, mask_hw)
    expected = grid_sample_paste(masks, boxes, (HEIGHT, WIDTH), threshold=None)
    out = _exact(masks, boxes, None)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert expected.count_nonzero() > 1000  # the cases paste something


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_binary_masks_equal_thegrid_sample_paste(threshold):
    masks, boxes = _masks_and_boxes(80, 3)
    values = grid_sample_paste(masks, boxes, (HEIGHT, WIDTH), threshold=None)
    expected = grid_sample_paste(masks, boxes, (HEIGHT, WIDTH), threshold=threshold)
    out = _exact(masks, boxes, threshold)
    assert out.dtype == torch.bool
    # The old paste kept values > threshold, the op keeps values >= threshold: they differ only
    # on exact ties, which these random masks do not have.
    assert not (values == threshold).any()
    assert torch.equal(out, expected)


def test_step_masks_follow_the_unrounded_box():
    probs = torch.zeros(2, 4, 4)
    probs[0, :, :2] = 1.0  # left half of the box
    probs[1] = 1.0
    boxes = torch.tensor([[4.0, 2.0, 12.0, 6.0], [0.4, 0.4, 3.6, 2.6]])
    out = paste_masks(probs[:, None], boxes, (10, 16), threshold=0.5, exact_box=True)[:, 0]
    assert torch.equal(out, grid_sample_paste(probs, boxes, (10, 16)))
    ys, xs = torch.where(out[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (2, 5, 4, 7)
    assert torch.where(out[1])[1].unique().tolist() == [0, 1, 2, 3]


def test_float64_and_low_precision_masks():
    masks, boxes = _masks_and_boxes(20, 4)
    expected = grid_sample_paste(masks, boxes, (HEIGHT, WIDTH), threshold=None)
    out = _exact(masks.double(), boxes.double(), None)
    assert out.dtype == torch.float64
    # float64 all the way: off from the float32 paste by that one's rounding of positions.
    torch.testing.assert_close(out.float(), expected, atol=1e-5, rtol=0)
    for dtype in (torch.float16, torch.bfloat16):
        low = masks.to(dtype)
        out = _exact(low, boxes, None)
        assert out.dtype == dtype
        ref = grid_sample_paste(low.float(), boxes, (HEIGHT, WIDTH), threshold=None)
        torch.testing.assert_close(out.float(), ref, atol=8e-3, rtol=0)


def test_reference_equals_the_op_and_empty_inputs():
    masks, boxes = _masks_and_boxes(30, 5)
    for threshold in (None, 0.5):
        out = paste_masks(
            masks[:, None], boxes, (HEIGHT, WIDTH), threshold=threshold, exact_box=True
        )
        ref = paste_masks_reference(
            masks[:, None], boxes, (HEIGHT, WIDTH), threshold=threshold, exact_box=True
        )
        if threshold is None:
            torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
        else:
            assert torch.equal(out, ref)
    empty = paste_masks(
        torch.zeros(0, 1, 4, 4), torch.zeros(0, 4), (5, 6), threshold=0.5, exact_box=True
    )
    assert empty.shape == (0, 1, 5, 6) and empty.dtype == torch.bool
    assert paste_masks(masks[:, None], boxes, (0, WIDTH), exact_box=True).shape == (30, 1, 0, WIDTH)


def test_opcheck_exact_box():
    if not hasattr(torch.ops, "ovvision") or not hasattr(torch.ops.ovvision, "paste_masks"):
        pytest.skip("needs the compiled operator")
    masks, boxes = _masks_and_boxes(6, 9)
    for threshold in (None, 0.5):
        torch.library.opcheck(
            torch.ops.ovvision.paste_masks.default,
            (masks[:, None], boxes, 20, 30, 1, threshold, True),
        )


@pytest.mark.cuda
@pytest.mark.skipif(
    not (
        torch.cuda.is_available()
        and torch._C._dispatch_has_kernel_for_dispatch_key("ovvision::paste_masks", "CUDA")
    ),
    reason="needs a GPU and ovvision._C built with CUDA",
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_cuda_exact_box_equals_the_cpu_kernel(dtype):
    masks, boxes = _masks_and_boxes(50, 10)
    masks = masks.to(dtype)[:, None]
    for threshold in (None, 0.5):
        cpu = paste_masks(masks, boxes, (HEIGHT, WIDTH), threshold=threshold, exact_box=True)
        gpu = paste_masks(
            masks.cuda(), boxes.cuda(), (HEIGHT, WIDTH), threshold=threshold, exact_box=True
        ).cpu()
        assert gpu.dtype == cpu.dtype
        if threshold is None:
            atol = {torch.float32: 1e-6, torch.float64: 1e-12}.get(dtype, 1e-2)
            torch.testing.assert_close(gpu.float(), cpu.float(), atol=atol, rtol=0)
        else:
            assert (gpu != cpu).float().mean() < 1e-4
