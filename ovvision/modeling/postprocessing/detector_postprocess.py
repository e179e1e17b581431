"""Bring detections from the network's input resolution back to the original image."""

from __future__ import annotations

import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

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

    Args:
        mask_probs: ``Tensor[N, M, M]`` probabilities.
        boxes: ``Tensor[N, 4]`` where each mask goes, in image pixels.
        image_size: ``(h, w)``.
        threshold: binarisation threshold.

    Returns:
        ``BoolTensor[N, h, w]``.
    """
    pasted = paste_masks_in_image(mask_probs[:, None], boxes, image_size, padding=1)
    return pasted[:, 0] > threshold
