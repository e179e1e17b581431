"""Bring detections from the network's input resolution back to the original image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ovvision.structures import Instances


def detector_postprocess(
    results: Instances, output_height: int, output_width: int, mask_threshold: float = 0.5
) -> Instances:
    """Rescale detections to an ``output_height x output_width`` image and paste their masks.

    Args:
        results: detections at the input resolution ``results.image_size`` with ``pred_boxes``,
            ``scores``, ``pred_classes`` and optionally ``pred_mask_probs`` ``Tensor[N, M, M]``
            (box-relative mask probabilities).
        output_height, output_width: the original image size.
        mask_threshold: probability above which a pixel belongs to the mask.

    Returns:
        New Instances of size ``(output_height, output_width)`` with ``pred_boxes``, ``scores``,
        ``pred_classes`` and, where masks were predicted, ``pred_masks``
        ``BoolTensor[N, output_height, output_width]``.
    """
    in_h, in_w = results.image_size
    boxes = results.pred_boxes.clone()
    boxes.scale(output_width / in_w, output_height / in_h)
    boxes.clip((output_height, output_width))
    out = Instances(
        (output_height, output_width),
        pred_boxes=boxes,
        scores=results.scores,
        pred_classes=results.pred_classes,
    )
    if results.has("pred_mask_probs"):
        out.pred_masks = paste_masks(
            results.pred_mask_probs, boxes.tensor, (output_height, output_width), mask_threshold
        )
    return out


def paste_masks(
    mask_probs: torch.Tensor,
    boxes: torch.Tensor,
    image_size: tuple[int, int],
    threshold: float = 0.5,
) -> torch.Tensor:
    """Paste box-relative masks into full images.

    Each image pixel centre is mapped into its box and the mask is sampled bilinearly there
    (zero outside the box), so masks line up with the exact, unrounded box. (``ovvision.ops``'
    ``paste_masks`` keeps torchvision's semantics instead, which truncate the padded box to
    integers and can shift a mask by a pixel: noticeable on OV-Shapes' small objects.)

    Args:
        mask_probs: ``Tensor[N, M, M]`` probabilities.
        boxes: ``Tensor[N, 4]`` where each mask goes, in image pixels.
        image_size: ``(h, w)``.
        threshold: binarisation threshold.

    Returns:
        ``BoolTensor[N, h, w]``.
    """
    h, w = image_size
    out = torch.zeros(len(boxes), h, w, dtype=torch.bool, device=boxes.device)
    ys = torch.arange(h, device=boxes.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=boxes.device, dtype=torch.float32) + 0.5
    chunk = max(1, _PASTE_ELEMENTS // max(h * w, 1))
    for start in range(0, len(boxes), chunk):
        b = boxes[start : start + chunk].float()
        n = len(b)
        size = (b[:, 2:] - b[:, :2]).clamp(min=1e-6)
        gx = (xs[None] - b[:, 0:1]) / size[:, 0:1] * 2 - 1
        gy = (ys[None] - b[:, 1:2]) / size[:, 1:2] * 2 - 1
        grid = torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], 3)
        masks = mask_probs[start : start + chunk, None].float()
        sampled = F.grid_sample(masks, grid, mode="bilinear", align_corners=False)
        out[start : start + chunk] = sampled[:, 0] > threshold
    return out


# Pixels pasted per chunk (bounds the temporary sampling grid to ~128 MB).
_PASTE_ELEMENTS = 1 << 24
