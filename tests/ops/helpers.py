"""Inputs shared by the op tests: feature maps in several layouts and random ROIs."""

from __future__ import annotations

import pytest
import torch
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
