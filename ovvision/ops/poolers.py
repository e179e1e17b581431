"""Multi-scale ROIAlign over a feature pyramid, a drop-in for torchvision's ``MultiScaleRoIAlign``.

Each box is pooled from one pyramid level, chosen by the FPN rule (Lin et al., eq. 1):
``level = floor(canonical_level + log2(sqrt(area) / canonical_scale) + 1e-6)``, clamped to the
levels present. The scale of each level is inferred from its height relative to the largest
image height, rounded to a power of two, as torchvision does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ovvision.ops.roi_align import _pair, boxes_to_rois, roi_align

__all__ = ["MultiScaleROIAlign"]


def _level_scale(feature: Tensor, max_image_height: int) -> float:
    """Power-of-two scale of a feature map relative to the (padded) input images."""
    return 2.0 ** round(math.log2(feature.shape[-2] / max_image_height))


class MultiScaleROIAlign(nn.Module):
    """ROIAlign over several feature maps with FPN level assignment.

    Same interface and results as ``torchvision.ops.MultiScaleRoIAlign`` (it uses
    ``aligned=False`` by default, as torchvision does), running on :func:`roi_align`.

    Args:
        featmap_names: keys of the feature dict to pool from, finest level first.
        output_size: ``(pooled_height, pooled_width)`` or one int.
        sampling_ratio: samples per bin side; ``<= 0`` means adaptive.
        canonical_scale: box size that maps to ``canonical_level`` (224 in the FPN paper).
        canonical_level: pyramid level of a ``canonical_scale`` box (4 in the FPN paper).
        aligned: half-pixel alignment of :func:`roi_align`.
    """

    def __init__(
        self,
        featmap_names: list[str],
        output_size: int | tuple[int, int] | list[int],
        sampling_ratio: int,
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        if not featmap_names:
            raise ValueError("MultiScaleROIAlign: `featmap_names` must not be empty")
        self.featmap_names = list(featmap_names)
        self.output_size = _pair(
            tuple(output_size) if isinstance(output_size, list) else output_size
        )
        self.sampling_ratio = int(sampling_ratio)
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        self.aligned = aligned

    def _assign_levels(self, boxes: list[Tensor], k_min: int, k_max: int) -> Tensor:
        """Index (0 = finest present level) of the level each box is pooled from, Tensor[K]."""
        area = torch.cat([(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in boxes])
        size = torch.sqrt(area)
        level = torch.floor(
            self.canonical_level
            + torch.log2(size / self.canonical_scale)
            + torch.tensor(1e-6, dtype=size.dtype)
        )
        return (torch.clamp(level, min=k_min, max=k_max).to(torch.int64) - k_min).to(torch.int64)

    def forward(
        self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        """Pool every box from its level.

        Args:
            x: feature maps ``Tensor[N, C, H_l, W_l]`` by name; names not in ``featmap_names``
                are ignored.
            boxes: one ``Tensor[L_i, 4]`` of ``(x1, y1, x2, y2)`` per image, in image pixels.
            image_shapes: ``(height, width)`` of each (unpadded) image.

        Returns:
            Tensor[sum(L_i), C, pooled_height, pooled_width], boxes in the order given.
        """
        missing = [name for name in self.featmap_names if name not in x]
        if missing:
            raise KeyError(f"MultiScaleROIAlign: feature maps {missing} not in {list(x)}")
        if not image_shapes:
            raise ValueError("MultiScaleROIAlign: `image_shapes` must not be empty")
        features = [x[name] for name in self.featmap_names]
        max_height = max(shape[0] for shape in image_shapes)
        scales = [_level_scale(f, max_height) for f in features]
        rois = boxes_to_rois(boxes)
        if len(features) == 1:
            return roi_align(
                features[0], rois, self.output_size, scales[0], self.sampling_ratio, self.aligned
            )
        k_min = int(-math.log2(scales[0]))
        k_max = int(-math.log2(scales[-1]))
        levels = self._assign_levels(boxes, k_min, k_max)
        first = features[0]
        result = first.new_zeros((rois.size(0), first.size(1), *self.output_size))
        for index, (feature, scale) in enumerate(zip(features, scales)):
            in_level = torch.where(levels == index)[0]
            pooled = roi_align(
                feature, rois[in_level], self.output_size, scale, self.sampling_ratio, self.aligned
            )
            result[in_level] = pooled.to(result.dtype)
        return result

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(featmap_names={self.featmap_names}, "
            f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio}, "
            f"aligned={self.aligned})"
        )
