"""The one place that chooses the multi-scale ROI pooling implementation."""

from __future__ import annotations

from torch import nn

from ovvision.ops import MultiScaleROIAlign


def build_roi_pooler(level_names: list[str], output_size: int, sampling_ratio: int) -> nn.Module:
    """A pooler ``(features, boxes, image_sizes) -> Tensor[sum K_i, C, S, S]``.

    Each box is pooled from the pyramid level matching its size (FPN's level assignment), with
    ``ovvision.ops``' ROIAlign (compiled kernels where built, torchvision's otherwise).

    Args:
        level_names: pyramid levels to pool from, finest first (strides must double per level).
        output_size: side ``S`` of the pooled features.
        sampling_ratio: bilinear samples per bin side (0 = adaptive).
    """
    return MultiScaleROIAlign(list(level_names), output_size, sampling_ratio)
