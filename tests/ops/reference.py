"""Slow, readable float64 ROIAlign that the tests compare the kernels against.

The sample grid of a bin is separable, so the bilinear samples of one ROI are
``A_y @ feature @ A_x^T`` with dense interpolation matrices ``A_y`` (samples x H) and
``A_x`` (samples x W); a sample more than one pixel outside the map has an all-zero row.
Being plain tensor algebra, it is differentiable in the feature map.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def interpolation_matrix(coords: list[float], size: int) -> Tensor:
    """Tensor[len(coords), size]: bilinear weights of each sample coordinate along one axis."""
    m = torch.zeros(len(coords), size, dtype=torch.float64)
    for i, v in enumerate(coords):
        if v < -1.0 or v > size:
            continue
        v = max(v, 0.0)
        low = int(math.floor(v))
        if low >= size - 1:
            low = high = size - 1
            v = float(low)
        else:
            high = low + 1
        frac = v - low
        m[i, low] += 1.0 - frac
        m[i, high] += frac
    return m


def roi_align_float64(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """ROIAlign in float64: Tensor[N, C, H, W] x Tensor[K, 5] -> Tensor[K, C, PH, PW]."""
    x = input.to(torch.float64)
    _, channels, height, width = x.shape
    pooled_h, pooled_w = output_size
    offset = 0.5 if aligned else 0.0
    outputs = []
    for roi in rois.to(torch.float64).tolist():
        x1, y1, x2, y2 = (c * spatial_scale - offset for c in roi[1:])
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
        grid_h = sampling_ratio if sampling_ratio > 0 else max(math.ceil(bin_h), 0)
        grid_w = sampling_ratio if sampling_ratio > 0 else max(math.ceil(bin_w), 0)
        if grid_h == 0 or grid_w == 0:
            outputs.append(x.new_zeros(channels, pooled_h, pooled_w))
            continue
        ys = [
            y1 + p * bin_h + (i + 0.5) * bin_h / grid_h
            for p in range(pooled_h)
            for i in range(grid_h)
        ]
        xs = [
            x1 + p * bin_w + (i + 0.5) * bin_w / grid_w
            for p in range(pooled_w)
            for i in range(grid_w)
        ]
        a_y = interpolation_matrix(ys, height).to(x.device)
        a_x = interpolation_matrix(xs, width).to(x.device)
        samples = torch.einsum("yh,chw,xw->cyx", a_y, x[int(roi[0])], a_x)
        pooled = samples.reshape(channels, pooled_h, grid_h, pooled_w, grid_w).sum((2, 4))
        outputs.append(pooled / (grid_h * grid_w))
    if not outputs:
        return x.new_zeros(0, channels, pooled_h, pooled_w)
    return torch.stack(outputs)
