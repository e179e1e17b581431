"""CUDA kernels against the CPU kernels (and torchvision); skipped where no GPU is present."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from ovvision.ops import MultiScaleROIAlign, has_ops, paste_masks, roi_align
from tests.ops.helpers import CONFIGS, feature_map, in_layout, random_rois

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not (
            torch.cuda.is_available()
            and has_ops()
            and torch._C._dispatch_has_kernel_for_dispatch_key("ovvision::roi_align", "CUDA")
        ),
        reason="needs a GPU and ovvision._C built with CUDA",
    ),
]

ATOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 4e-3, torch.bfloat16: 1e-2}


def _inputs(config: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    c = CONFIGS[config]
    g = torch.Generator().manual_seed(seed)
    x = feature_map(c["batch"], c["channels"], c["height"], c["width"], g)
    return (
        x,
        random_rois(c["batch"], c["height"], c["width"], c["num_rois"], 0.5, g),
        c["output_size"],
    )


@pytest.mark.parametrize("layout", ["contiguous", "non_contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", list(ATOL))
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_forward_and_backward_match_cpu(aligned, sampling_ratio, dtype, layout):
    x, rois, size = _inputs("blocked", seed=sampling_ratio + 3)
    x = x.to(dtype)
    grad_out = torch.rand(rois.size(0), x.size(1), *size).to(dtype)
    results = {}
    for device in ("cpu", "cuda"):
        xd = in_layout(x, layout).to(device).detach().requires_grad_()
        out = roi_align(xd, rois.to(device), size, 0.5, sampling_ratio, aligned)
        (grad,) = torch.autograd.grad(out, xd, grad_out.to(device))
        assert out.dtype == grad.dtype == dtype
        results[device] = (out.cpu(), grad.cpu())
    rtol = 0.0 if dtype in (torch.float32, torch.float64) else 1e-2
    for got, want in zip(results["cuda"], results["cpu"]):
        torch.testing.assert_close(got, want, atol=ATOL[dtype], rtol=rtol)


def test_roi_align_empty_and_gradcheck_on_cuda():
    x = torch.rand(2, 5, 6, 7, dtype=torch.float64, device="cuda", requires_grad=True)
    assert roi_align(x, torch.zeros(0, 5, device="cuda"), 2, 1.0).shape == (0, 5, 2, 2)
    rois = random_rois(2, 6, 7, 6, 1.0, torch.Generator().manual_seed(0)).double().cuda()
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, (2, 2), 1.0, 2, True), (x,))


def test_opcheck_on_cuda():
    x = feature_map(2, 5, 7, 8, torch.Generator().manual_seed(1)).cuda().requires_grad_()
    rois = random_rois(2, 7, 8, 6, 0.5, torch.Generator().manual_seed(1)).cuda()
    torch.library.opcheck(torch.ops.ovvision.roi_align.default, (x, rois, 0.5, 3, 2, 2, True))
    masks = torch.rand(4, 1, 7, 7, device="cuda")
    boxes = torch.tensor([[1.0, 2, 9, 8], [-3, -2, 5, 6], [10, 1, 30, 19], [4, 4, 4, 4]]).cuda()
    torch.library.opcheck(torch.ops.ovvision.paste_masks.default, (masks, boxes, 20, 25, 1, None))


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_paste_masks_matches_torchvision_and_cpu(threshold):
    g = torch.Generator().manual_seed(2)
    masks = torch.rand(30, 1, 14, 14, generator=g)
    center = torch.rand(30, 2, generator=g) * torch.tensor([53.0, 37.0])
    half = torch.rand(30, 2, generator=g) * 20 + 0.5
    boxes = torch.cat([center - half, center + half], dim=1)
    cpu = paste_masks(masks, boxes, (37, 53), threshold=threshold)
    cuda = paste_masks(masks.cuda(), boxes.cuda(), (37, 53), threshold=threshold).cpu()
    if threshold is None:
        torch.testing.assert_close(cuda, cpu, atol=1e-5, rtol=0)
        torch.testing.assert_close(
            cuda, paste_masks_in_image(masks, boxes, (37, 53)), atol=1e-5, rtol=0
        )
    else:
        assert (cuda != cpu).float().mean() < 1e-3


def test_multiscale_pooler_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(3)
    features = OrderedDict(
        (name, torch.randn(2, 8, 128 // s, 160 // s, generator=g))
        for name, s in (("p2", 4), ("p3", 8), ("p4", 16))
    )
    boxes = [random_rois(1, 128, 160, n, 1.0, g)[:, 1:] for n in (9, 7)]
    pooler = MultiScaleROIAlign(list(features), 7, 2, canonical_scale=32)
    cpu = pooler(features, boxes, [(128, 160), (120, 150)])
    cuda = pooler(
        OrderedDict((k, v.cuda()) for k, v in features.items()),
        [b.cuda() for b in boxes],
        [(128, 160), (120, 150)],
    )
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=0)
