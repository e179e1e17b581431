"""Draw boxes, masks and labels on images with colours that stay legible."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import torch
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks


def class_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct saturated colours, one per class (golden-ratio hue steps)."""
    colors = []
    for i in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.85, 0.95)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return colors


def draw_instances(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: Sequence[str],
    classes: Sequence[int],
    masks: torch.Tensor | None = None,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Draw instances on an image.

    Args:
        image: ``uint8 Tensor[3, H, W]`` RGB.
        boxes: ``Tensor[N, 4]`` XYXY in pixels.
        labels: N captions (e.g. ``"star 0.93"``).
        classes: N class indices (choose the colours).
        masks: optional ``BoolTensor[N, H, W]``.
        num_classes: size of the palette (default: ``max(classes) + 1``).

    Returns:
        ``uint8 Tensor[3, H, W]`` with masks blended, boxes outlined and labels written.
    """
    if len(boxes) == 0:
        return image.clone()
    palette = class_colors(num_classes or (max(classes) + 1))
    colors = [palette[c] for c in classes]
    out = image
    if masks is not None and len(masks):
        out = draw_segmentation_masks(out, masks.bool(), alpha=0.45, colors=colors)
    width = max(1, round(max(image.shape[-2:]) / 300))
    return draw_bounding_boxes(
        out,
        boxes.float(),
        labels=list(labels),
        colors=colors,
        width=width,
        label_colors="white",  # white text on a box of the class colour reads on any image
        label_background_colors=colors,
        fill_labels=True,
    )
