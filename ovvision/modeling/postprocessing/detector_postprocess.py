"""Bring detections from the network's input resolution back to the original image."""

from __future__ import annotations

from ovvision.ops import paste_masks
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
        mask_threshold: probability from which on (``>=``) a pixel belongs to the mask.

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
        # Exact-box mode: masks line up with the unrounded boxes (torchvision's truncation of
        # the padded box can shift a mask by a pixel, noticeable on small objects).
        pasted = paste_masks(
            results.pred_mask_probs[:, None],
            boxes.tensor,
            (output_height, output_width),
            threshold=mask_threshold,
            exact_box=True,
        )
        out.pred_masks = pasted[:, 0]
    return out
