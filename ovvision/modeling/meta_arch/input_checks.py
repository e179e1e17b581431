"""Validation of the batches a detector receives; every error names the image."""

from __future__ import annotations

from typing import Any

import torch

from ovvision.structures import Boxes, Instances


def image_name(item: dict[str, Any], index: int) -> str:
    """How errors refer to a batch item: its file name, else its image id, else its index."""
    if item.get("file_name"):
        return f"image '{item['file_name']}'"
    if "image_id" in item:
        return f"image id {item['image_id']}"
    return f"batch item {index}"


def check_image(item: dict[str, Any], index: int) -> torch.Tensor:
    """The ``Tensor[3, H, W]`` image of a batch item, or a ValueError naming it."""
    image = item.get("image")
    where = image_name(item, index)
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{where}: 'image' must be a Tensor[3, H, W], got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"{where}: 'image' must be a Tensor[3, H, W], got {tuple(image.shape)}")
    return image


def check_targets(
    item: dict[str, Any], index: int, num_classes: int, seen: torch.Tensor
) -> Instances:
    """The ground truth of a training item, after checking it; errors name the image.

    Args:
        item: a batch dict with ``"instances"`` holding ``gt_boxes`` (Boxes, x1 < x2, y1 < y2,
            finite), ``gt_classes`` (int64, seen classes of the vocabulary) and optionally
            ``gt_masks`` (``BoolTensor[N, H, W]`` at the image's size).
        index: position in the batch.
        num_classes: size of the vocabulary.
        seen: ``BoolTensor[C]`` classes that may be annotated in training.
    """
    where = image_name(item, index)
    inst = item.get("instances")
    if not isinstance(inst, Instances):
        raise ValueError(
            f"{where}: training needs 'instances' (Instances with gt_boxes and gt_classes)"
        )
    for field in ("gt_boxes", "gt_classes"):
        if not inst.has(field):
            raise ValueError(f"{where}: instances have no '{field}'")
    if not isinstance(inst.gt_boxes, Boxes):
        raise ValueError(f"{where}: gt_boxes must be Boxes, got {type(inst.gt_boxes).__name__}")
    boxes = inst.gt_boxes.tensor
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{where}: gt_boxes contain NaN or inf")
    degenerate = ~inst.gt_boxes.nonempty()
    if degenerate.any():
        i = int(degenerate.nonzero()[0, 0])
        raise ValueError(
            f"{where}: gt box {i} {boxes[i].tolist()} is degenerate (needs x1 < x2 and y1 < y2)"
        )
    _check_classes(inst.gt_classes, len(boxes), num_classes, seen, where)
    if inst.has("gt_masks"):
        _check_masks(inst.gt_masks, len(boxes), tuple(item["image"].shape[-2:]), where)
    return inst


def check_masks_everywhere_or_nowhere(batched_inputs: list[dict[str, Any]]) -> None:
    """Raise, naming an image, if some items of a batch have ``gt_masks`` and others do not."""
    has = [x["instances"].has("gt_masks") for x in batched_inputs]
    if any(has) and not all(has):
        i = has.index(False)
        raise ValueError(
            f"{image_name(batched_inputs[i], i)}: instances have no 'gt_masks' while other "
            "images of the batch have them"
        )


def _check_classes(classes: Any, n: int, num_classes: int, seen: torch.Tensor, where: str) -> None:
    if not isinstance(classes, torch.Tensor) or classes.dtype != torch.int64 or classes.dim() != 1:
        raise ValueError(f"{where}: gt_classes must be an int64 Tensor[N]")
    if n == 0:
        return
    low, high = int(classes.min()), int(classes.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{where}: gt_classes must lie in [0, {num_classes}) (the vocabulary); "
            f"got {low}..{high}"
        )
    unseen = ~seen.to(classes.device)[classes]
    if unseen.any():
        raise ValueError(
            f"{where}: gt class {int(classes[unseen][0])} is marked novel in the training "
            "vocabulary; novel classes must not be annotated in training"
        )


def _check_masks(masks: Any, n: int, image_hw: tuple[int, int], where: str) -> None:
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        raise ValueError(f"{where}: gt_masks must be a BoolTensor[N, H, W]")
    if masks.dim() != 3 or masks.shape[0] != n or tuple(masks.shape[1:]) != image_hw:
        raise ValueError(
            f"{where}: gt_masks must have shape [{n}, {image_hw[0]}, {image_hw[1]}] (boxes, "
            f"image size), got {tuple(masks.shape)}"
        )
