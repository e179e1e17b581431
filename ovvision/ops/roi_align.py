"""ROIAlign (He et al., Mask R-CNN): bilinear pooling of box regions into fixed-size grids.

The compiled operator ``torch.ops.ovvision.roi_align`` runs when the extension is built;
otherwise :func:`roi_align_reference` (torchvision's operator, with identical semantics) does.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn

from ovvision.ops._extension import is_channels_last, op_supports

__all__ = ["ROIAlign", "roi_align", "roi_align_reference", "boxes_to_rois"]


def boxes_to_rois(boxes: Tensor | list[Tensor]) -> Tensor:
    """Convert per-image boxes to the ``(K, 5)`` ROI format.

    Args:
        boxes: either ``Tensor[K, 5]`` rows of ``(batch_index, x1, y1, x2, y2)``, returned as is,
            or a list with one ``Tensor[L_i, 4]`` of ``(x1, y1, x2, y2)`` per image.

    Returns:
        Tensor[K, 5]: ``(batch_index, x1, y1, x2, y2)`` with ``K = sum(L_i)``.
    """
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.size(1) != 5:
            raise ValueError(
                f"roi_align: `boxes` as a tensor must have shape (K, 5), got {tuple(boxes.shape)}"
            )
        return boxes
    for i, b in enumerate(boxes):
        if b.dim() != 2 or b.size(1) != 4:
            raise ValueError(
                f"roi_align: `boxes`[{i}] must have shape (L, 4), got {tuple(b.shape)}"
            )
    if not boxes:
        raise ValueError("roi_align: `boxes` is an empty list; pass one (L, 4) tensor per image")
    batch_index = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(batch_index), torch.cat(list(boxes))], dim=1)


def _pair(output_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(output_size, int):
        return output_size, output_size
    if len(output_size) != 2:
        raise ValueError(f"roi_align: `output_size` must be an int or a pair, got {output_size}")
    return int(output_size[0]), int(output_size[1])


def roi_align_reference(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """ROIAlign through torchvision's operator, with the extension's dtype and layout rules.

    bfloat16 (which torchvision lacks on CPU) is computed in float32, and a channels-last
    ``input`` gives a channels-last output.

    Args:
        input (Tensor[N, C, H, W]): feature map.
        rois (Tensor[K, 5]): ``(batch_index, x1, y1, x2, y2)`` in input-image coordinates.
        output_size: ``(pooled_height, pooled_width)``.
        spatial_scale: feature-map size / input-image size.
        sampling_ratio: samples per bin side; ``<= 0`` means ``ceil(bin size)``.
        aligned: shift by half a pixel (the pixel-model-correct variant).

    Returns:
        Tensor[K, C, pooled_height, pooled_width] of ``input``'s dtype.
    """
    if input.dim() != 4:
        raise ValueError(
            f"roi_align: `input` must be a 4-D tensor (N, C, H, W), got {tuple(input.shape)}"
        )
    compute = torch.float32 if input.dtype == torch.bfloat16 else input.dtype
    out = torchvision.ops.roi_align(
        input.to(compute),
        rois.to(compute),
        output_size,
        spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
    ).to(input.dtype)
    if is_channels_last(input):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Pool each box of ``boxes`` from ``input`` into an ``output_size`` grid (ROIAlign).

    Each output bin averages ``sampling_ratio x sampling_ratio`` bilinear samples (``ceil`` of
    the bin size when ``sampling_ratio <= 0``); samples more than one pixel outside the map count
    as 0. float16 and bfloat16 inputs are accumulated in float32. Differentiable in ``input``.

    Args:
        input (Tensor[N, C, H, W]): feature map, NCHW or channels-last (the output follows).
        boxes (Tensor[K, 5] or list[Tensor[L_i, 4]]): ``(batch_index, x1, y1, x2, y2)`` rows, or
            ``(x1, y1, x2, y2)`` boxes per image, in input-image coordinates.
        output_size: ``(pooled_height, pooled_width)``, or one int for both.
        spatial_scale: feature-map size / input-image size (e.g. 1/16).
        sampling_ratio: samples per bin side; ``<= 0`` means adaptive.
        aligned: if True, shift box coordinates by -0.5 pixel (pixel centres at +0.5), as in
            Detectron2's ROIAlignV2; if False, torchvision's legacy behaviour.

    Returns:
        Tensor[K, C, pooled_height, pooled_width].
    """
    rois = boxes_to_rois(boxes)
    pooled_h, pooled_w = _pair(output_size)
    if op_supports(input.device):
        return torch.ops.ovvision.roi_align(
            input, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned
        )
    return roi_align_reference(
        input, rois, (pooled_h, pooled_w), spatial_scale, sampling_ratio, aligned
    )


class ROIAlign(nn.Module):
    """Module form of :func:`roi_align`.

    Args:
        output_size: ``(pooled_height, pooled_width)`` or one int.
        spatial_scale: feature-map size / input-image size.
        sampling_ratio: samples per bin side; ``<= 0`` means adaptive.
        aligned: half-pixel alignment (see :func:`roi_align`).
    """

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, input: Tensor, rois: Tensor | list[Tensor]) -> Tensor:
        """Pool ``rois`` (Tensor[K, 5] or list[Tensor[L_i, 4]]) from ``input`` (Tensor[N, C, H, W]).

        Returns:
            Tensor[K, C, pooled_height, pooled_width].
        """
        return roi_align(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio}, "
            f"aligned={self.aligned})"
        )
