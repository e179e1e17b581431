"""Pasting low-resolution instance masks into full-size images.

Two modes. By default the semantics are those of torchvision's ``paste_masks_in_image`` (Mask
R-CNN post-processing): each ``(M_h, M_w)`` mask is zero-padded by ``padding`` pixels, its box is
scaled about its centre by ``(M_w + 2 * padding) / M_w`` and truncated to integers
``(x0, y0, x1, y1)``, and the padded mask is resized bilinearly (``align_corners=False``) to
``(y1 - y0 + 1, x1 - x0 + 1)`` and written at ``(y0, x0)``, clipped to the image.

With ``exact_box=True`` (what ovvision's detector uses) the mask is placed on the exact, unrounded
box: each pixel centre ``(x + 0.5, y + 0.5)`` is mapped into the box and the mask is sampled
bilinearly there as ``F.grid_sample(..., align_corners=False)`` with zero padding does (so the
mask fades out over half a mask cell beyond the box). Truncating the box, as torchvision does, can
shift a mask by a pixel: noticeable on small objects.

The compiled operator does either in one fused parallel pass that only computes the pixels a box
reaches; :func:`paste_masks_reference` is the plain PyTorch fallback.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ovvision.ops._extension import op_supports

__all__ = ["paste_masks", "paste_masks_reference"]


def _expand_boxes(boxes: Tensor, scale: float) -> Tensor:
    """Scale ``boxes`` (Tensor[N, 4]) about their centres and truncate them to int64."""
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    center_x = (boxes[:, 2] + boxes[:, 0]) * 0.5
    center_y = (boxes[:, 3] + boxes[:, 1]) * 0.5
    expanded = torch.stack(
        [center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h], dim=1
    )
    return expanded.to(torch.int64)


def _check_args(masks: Tensor, boxes: Tensor, image_shape: tuple[int, int], padding: int) -> None:
    if masks.dim() != 4 or masks.size(1) != 1:
        raise ValueError(
            f"paste_masks: `masks` must have shape (N, 1, M_h, M_w), got {tuple(masks.shape)}"
        )
    if boxes.dim() != 2 or boxes.size(1) != 4 or boxes.size(0) != masks.size(0):
        raise ValueError(
            f"paste_masks: `boxes` must have shape ({masks.size(0)}, 4), got {tuple(boxes.shape)}"
        )
    if len(image_shape) != 2 or min(image_shape) < 0:
        raise ValueError(f"paste_masks: `image_shape` must be (height, width), got {image_shape}")
    if padding < 0:
        raise ValueError(f"paste_masks: `padding` must be non-negative, got {padding}")


def _exact_box_window(lo: float, size: float, mask_len: int, limit: int) -> tuple[int, int]:
    """Pixels ``[start, end)`` along one axis that a mask on ``[lo, lo + size]`` can reach.

    Samples more than one mask cell outside the mask are zero, so the window ends half a cell
    (``size / (2 * mask_len)`` pixels) beyond the box; one more pixel each side absorbs rounding.
    """
    margin = size / (2 * mask_len) + 1
    return max(math.floor(lo - margin), 0), min(math.ceil(lo + size + margin), limit)


def _paste_exact_box_reference(masks: Tensor, boxes: Tensor, out: Tensor) -> None:
    """Exact-box mode into ``out`` (Tensor[N, 1, H, W]): ``F.grid_sample`` per mask and window."""
    height, width = out.shape[-2:]
    compute = torch.float64 if masks.dtype == torch.float64 else torch.float32
    b = boxes.to(compute)
    sizes = (b[:, 2:] - b[:, :2]).clamp(min=1e-6)
    for i, (box, size) in enumerate(zip(b.tolist(), sizes.tolist())):
        xs, xe = _exact_box_window(box[0], size[0], masks.size(3), width)
        ys, ye = _exact_box_window(box[1], size[1], masks.size(2), height)
        if xs >= xe or ys >= ye:
            continue
        px = torch.arange(xs, xe, dtype=compute, device=masks.device) + 0.5
        py = torch.arange(ys, ye, dtype=compute, device=masks.device) + 0.5
        gx = (px - b[i, 0]) / sizes[i, 0] * 2 - 1
        gy = (py - b[i, 1]) / sizes[i, 1] * 2 - 1
        h, w = ye - ys, xe - xs
        grid = torch.stack([gx[None, :].expand(h, w), gy[:, None].expand(h, w)], 2)
        sampled = F.grid_sample(
            masks[i : i + 1].to(compute), grid[None], mode="bilinear", align_corners=False
        )
        out[i, 0, ys:ye, xs:xe] = sampled[0, 0].to(out.dtype)


def paste_masks_reference(
    masks: Tensor,
    boxes: Tensor,
    image_shape: tuple[int, int],
    padding: int = 1,
    threshold: float | None = None,
    exact_box: bool = False,
) -> Tensor:
    """Plain PyTorch version of :func:`paste_masks` (one ``F.interpolate`` or, with
    ``exact_box``, one ``F.grid_sample`` per mask)."""
    _check_args(masks, boxes, image_shape, padding)
    height, width = int(image_shape[0]), int(image_shape[1])
    n = masks.size(0)
    out = masks.new_zeros((n, 1, height, width))
    if n > 0 and exact_box:
        _paste_exact_box_reference(masks, boxes, out)
    elif n > 0:
        scale = float(masks.size(3) + 2 * padding) / masks.size(3)
        padded = F.pad(masks, (padding,) * 4)
        for i, (x0, y0, x1, y1) in enumerate(_expand_boxes(boxes, scale).tolist()):
            xs, xe = max(x0, 0), min(x1 + 1, width)
            ys, ye = max(y0, 0), min(y1 + 1, height)
            if xs >= xe or ys >= ye:
                continue
            size = (max(y1 - y0 + 1, 1), max(x1 - x0 + 1, 1))
            resized = F.interpolate(
                padded[i : i + 1], size=size, mode="bilinear", align_corners=False
            )
            out[i, 0, ys:ye, xs:xe] = resized[0, 0, ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out if threshold is None else out >= threshold


def paste_masks(
    masks: Tensor,
    boxes: Tensor,
    image_shape: tuple[int, int],
    padding: int = 1,
    threshold: float | None = None,
    exact_box: bool = False,
) -> Tensor:
    """Paste each mask into its box in an ``image_shape`` image.

    Args:
        masks (Tensor[N, 1, M_h, M_w]): mask probabilities (or logits), any floating dtype.
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` in image pixels; boxes may cross or lie
            outside the image border (the outside part is dropped).
        image_shape: ``(height, width)`` of the output image.
        padding: zero border added around each mask before resizing (torchvision uses 1);
            not used with ``exact_box``.
        threshold: if given, return ``pasted >= threshold`` as a bool mask instead of values.
        exact_box: place masks on the unrounded boxes (see the module docstring) instead of
            torchvision's padded, truncated ones.

    Returns:
        Tensor[N, 1, height, width] of ``masks``' dtype, or bool when ``threshold`` is given.
    """
    if op_supports(masks.device):
        return torch.ops.ovvision.paste_masks(
            masks, boxes, int(image_shape[0]), int(image_shape[1]), padding, threshold, exact_box
        )
    return paste_masks_reference(masks, boxes, image_shape, padding, threshold, exact_box)
