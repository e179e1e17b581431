"""Inputs shared by the op tests: feature maps in several layouts and random ROIs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

# Tests of what ovvision.ops computes. With the extension loaded (which tests/conftest.py requires
# unless OVVISION_NO_EXT=1) they test the kernels; in the fallback run (`make test`'s second step,
# OVVISION_NO_EXT=1) the same tests check the PyTorch references, except those that
# tests/ops/conftest.py marks as needing the kernels themselves.
requires_ops = pytest.mark.requires_ops

# Shapes that send the CPU kernels down each of their two paths: many ROIs on a small map use
# the channel-blocked kernel, two ROIs on a large map the planar one.
CONFIGS = {
    "blocked": dict(batch=2, channels=20, height=13, width=17, num_rois=12, output_size=(5, 4)),
    "planar": dict(batch=2, channels=20, height=41, width=47, num_rois=2, output_size=(3, 3)),
}

LAYOUTS = ("contiguous", "non_contiguous", "channels_last")


def in_layout(x: Tensor, layout: str) -> Tensor:
    """``x`` with the same values, laid out as named."""
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "non_contiguous":
        wide = torch.empty(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype)[..., ::2]
        wide.copy_(x)
        assert not wide.is_contiguous()
        return wide
    return x.contiguous()


def random_rois(
    batch: int,
    height: int,
    width: int,
    num_rois: int,
    spatial_scale: float,
    generator: torch.Generator,
) -> Tensor:
    """Tensor[num_rois, 5] of boxes in image coordinates, some crossing the map border."""
    size = torch.tensor([width, height], dtype=torch.float64) / spatial_scale
    corner = (torch.rand(num_rois, 2, generator=generator, dtype=torch.float64) * 1.3 - 0.15) * size
    extent = torch.rand(num_rois, 2, generator=generator, dtype=torch.float64) * 0.7 * size
    index = torch.randint(0, batch, (num_rois, 1), generator=generator).to(torch.float64)
    return torch.cat([index, corner, corner + extent], dim=1).to(torch.float32)


def feature_map(
    batch: int, channels: int, height: int, width: int, generator: torch.Generator
) -> Tensor:
    """Values in [-1, 1]: pooled outputs stay below 1, where fp16/bf16 rounding is small."""
    return torch.rand(batch, channels, height, width, generator=generator) * 2 - 1


def grid_sample_paste(
    mask_probs: torch.Tensor,
    boxes: torch.Tensor,
    image_size: tuple[int, int],
    threshold: float | None = 0.5,
) -> torch.Tensor:
    """The detector's mask pasting before issue 16 (``F.grid_sample`` over each exact box), the
    reference of ``paste_masks(..., exact_box=True)``: ``[N, h, w]`` bool, or float values with
    ``threshold=None``."""
    h, w = image_size
    dtype = torch.bool if threshold is not None else torch.float32
    out = torch.zeros(len(boxes), h, w, dtype=dtype, device=boxes.device)
    ys = torch.arange(h, device=boxes.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=boxes.device, dtype=torch.float32) + 0.5
    chunk = max(1, (1 << 24) // max(h * w, 1))
    for start in range(0, len(boxes), chunk):
        b = boxes[start : start + chunk].float()
        n = len(b)
        size = (b[:, 2:] - b[:, :2]).clamp(min=1e-6)
        gx = (xs[None] - b[:, 0:1]) / size[:, 0:1] * 2 - 1
        gy = (ys[None] - b[:, 1:2]) / size[:, 1:2] * 2 - 1
        grid = torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], 3)
        masks = mask_probs[start : start + chunk, None].float()
        sampled = F.grid_sample(masks, grid, mode="bilinear", align_corners=False)
        out[start : start + chunk] = (
            sampled[:, 0] > threshold if threshold is not None else sampled[:, 0]
        )
    return out
