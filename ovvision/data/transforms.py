"""Augmentations built from ``torchvision.transforms.v2`` and the config, plus mask helpers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_util
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "apply_test_transforms",
    "build_augmentation",
    "masks_to_tight_boxes",
    "mirror_text",
    "segmentation_to_mask",
    "stack_masks",
]

_MIRRORED_WORDS = {
    "left": "right",
    "right": "left",
    "leftmost": "rightmost",
    "rightmost": "leftmost",
}
_MIRROR_PATTERN = re.compile(r"\b(left|right|leftmost|rightmost)\b", flags=re.IGNORECASE)


def build_augmentation(cfg: Any, is_train: bool) -> list[v2.Transform]:
    """The geometric augmentations of ``cfg.INPUT`` (horizontal flip is applied by the mapper).

    Training: large-scale jitter (``INPUT.LSJ``: scale the image to a random fraction of a square
    canvas, then crop or pad to it) or a resize of the shortest edge to a size sampled from
    ``INPUT.MIN_SIZE_TRAIN`` with the longer edge capped at ``INPUT.MAX_SIZE_TRAIN``. Testing: the
    shortest edge to ``INPUT.MIN_SIZE_TEST`` (0 = keep the image size), longer edge capped.

    Returns:
        transforms that accept a dict of ``tv_tensors`` (image, boxes, masks).
    """
    if not is_train:
        if cfg.INPUT.MIN_SIZE_TEST == 0:
            return []
        return [v2.RandomShortestSize([cfg.INPUT.MIN_SIZE_TEST], max_size=cfg.INPUT.MAX_SIZE_TEST)]
    if cfg.INPUT.LSJ.ENABLED:
        size = (cfg.INPUT.LSJ.IMAGE_SIZE, cfg.INPUT.LSJ.IMAGE_SIZE)
        scales = (cfg.INPUT.LSJ.MIN_SCALE, cfg.INPUT.LSJ.MAX_SCALE)
        return [v2.ScaleJitter(size, scale_range=scales), v2.RandomCrop(size, pad_if_needed=True)]
    sizes = list(cfg.INPUT.MIN_SIZE_TRAIN)
    sampling = cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
    if sampling == "range":
        if len(sizes) != 2:
            raise ValueError(
                f"INPUT.MIN_SIZE_TRAIN must be (min, max) when INPUT.MIN_SIZE_TRAIN_SAMPLING is "
                f"'range', got {sizes}"
            )
        sizes = list(range(sizes[0], sizes[1] + 1))
    elif sampling != "choice":
        raise ValueError(
            f"INPUT.MIN_SIZE_TRAIN_SAMPLING must be 'choice' or 'range', got {sampling!r}"
        )
    return [v2.RandomShortestSize(sizes, max_size=cfg.INPUT.MAX_SIZE_TRAIN)]


def apply_test_transforms(
    array: np.ndarray, augmentations: Sequence[v2.Transform]
) -> dict[str, Any]:
    """The model input for one RGB uint8 ``ndarray[H, W, 3]``: ``{"image": Tensor[3, h, w]
    uint8 (after the test augmentations of :func:`build_augmentation`), "height": H,
    "width": W}``."""
    tensor = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1))
    for transform in augmentations:
        tensor = transform(tensor)
    return {
        "image": tensor.as_subclass(torch.Tensor).contiguous(),
        "height": int(array.shape[0]),
        "width": int(array.shape[1]),
    }


def segmentation_to_mask(
    segm: list[list[float]] | dict[str, Any], height: int, width: int
) -> np.ndarray:
    """``ndarray[H, W]`` uint8 mask of COCO polygons, compressed RLE or uncompressed RLE."""
    if isinstance(segm, list):
        rle = mask_util.merge(mask_util.frPyObjects(segm, height, width))
    elif isinstance(segm["counts"], list):
        rle = mask_util.frPyObjects(segm, height, width)
    else:
        rle = segm
    return mask_util.decode(rle)


def masks_to_tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``Tensor[N, 4]`` XYXY boxes enclosing whole pixels of ``BoolTensor[N, H, W]`` masks.

    ``x2``/``y2`` are one past the last pixel (a one-pixel mask at (0, 0) gives (0, 0, 1, 1));
    empty masks give zero boxes.
    """
    boxes = torch.zeros(masks.shape[0], 4, dtype=torch.float32)
    for i, mask in enumerate(masks):
        ys = torch.nonzero(mask.any(dim=1)).flatten()
        xs = torch.nonzero(mask.any(dim=0)).flatten()
        if len(xs):
            boxes[i] = torch.tensor([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], dtype=torch.float32)
    return boxes


def mirror_text(text: str) -> str:
    """Swap left and right words (for captions of a horizontally flipped image)."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        mirrored = _MIRRORED_WORDS[word.lower()]
        return mirrored.capitalize() if word[0].isupper() else mirrored

    return _MIRROR_PATTERN.sub(swap, text)


def stack_masks(masks: Sequence[np.ndarray], height: int, width: int) -> torch.Tensor:
    """``Tensor[N, H, W]`` uint8 from N masks (``Tensor[0, H, W]`` when there are none)."""
    if not masks:
        return torch.zeros(0, height, width, dtype=torch.uint8)
    return torch.from_numpy(np.stack(masks))
