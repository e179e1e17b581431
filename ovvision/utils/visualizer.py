"""Draw boxes, masks and labels on images so that people can read them.

Small images are enlarged before drawing (``min_size``), masks are blended and outlined, labels
are placed where they stay inside the image and overlap each other as little as possible, and a
:class:`ClassPalette` keeps one colour per class name for a whole run.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import draw_segmentation_masks

if TYPE_CHECKING:
    from ovvision.structures import Instances

DEFAULT_MIN_DRAW_SIZE = 512  # images whose longer side is shorter are enlarged to about this
_GOLDEN = 0.618033988749895


def class_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct saturated colours, one per class (golden-ratio hue steps)."""
    colors = []
    for i in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * _GOLDEN) % 1.0, 0.85, 0.95)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return colors


class ClassPalette:
    """One colour per class name, the same in every image drawn with this palette.

    Names get the colours of :func:`class_colors` in the order they are first seen, so the
    classes of one vocabulary are distinct and a class keeps its colour when the vocabulary
    changes.
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}

    def __call__(self, name: str) -> tuple[int, int, int]:
        index = self._index.setdefault(name, len(self._index))
        r, g, b = colorsys.hsv_to_rgb((index * _GOLDEN) % 1.0, 0.85, 0.95)
        return int(r * 255), int(g * 255), int(b * 255)


def drawing_scale(height: int, width: int, min_size: int) -> int:
    """The integer factor that brings the longer side to at least ``min_size`` (1 if it is)."""
    longer = max(height, width, 1)
    return max(1, -(-min_size // longer)) if min_size > longer else 1


def mask_outlines(masks: torch.Tensor, thickness: int = 1) -> torch.Tensor:
    """The border pixels of each mask.

    Args:
        masks: ``BoolTensor[N, H, W]``.
        thickness: border width in pixels.

    Returns:
        ``BoolTensor[N, H, W]``: mask pixels with a non-mask pixel (or the image's edge) within
        ``thickness`` steps up, down, left or right.
    """
    inner = masks.bool()
    for _ in range(max(1, thickness)):
        eroded = torch.zeros_like(inner)
        eroded[:, 1:-1, 1:-1] = (
            inner[:, 1:-1, 1:-1]
            & inner[:, :-2, 1:-1]
            & inner[:, 2:, 1:-1]
            & inner[:, 1:-1, :-2]
            & inner[:, 1:-1, 2:]
        )
        inner = eroded
    return masks.bool() & ~inner


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def place_labels(
    boxes: Sequence[Sequence[float]],
    sizes: Sequence[tuple[int, int]],
    image_size: tuple[int, int],
) -> list[tuple[int, int]]:
    """Top-left corners for label rectangles, one per box, greedily in the given order.

    Each label tries the corners of its box (above, inside, below); the first candidate inside
    the image that overlaps no label placed before it wins; if none does, the candidate with the
    least overlap. Candidates are clamped into the image, so a label never leaves it.

    Args:
        boxes: N boxes XYXY in pixels (put the most important first).
        sizes: N label sizes ``(width, height)`` in pixels.
        image_size: ``(height, width)``.

    Returns:
        N ``(x, y)`` corners.
    """
    height, width = image_size
    placed: list[tuple[float, ...]] = []
    corners = []
    for (x1, y1, x2, y2), (w, h) in zip(boxes, sizes):
        candidates = [
            (x1, y1 - h), (x1, y1), (x1, y2), (x1, y2 - h),
            (x2 - w, y1 - h), (x2 - w, y1), (x2 - w, y2), (x2 - w, y2 - h),
        ]  # fmt: skip
        best, best_cost = None, None
        for cx, cy in candidates:
            cx = int(min(max(cx, 0), max(width - w, 0)))
            cy = int(min(max(cy, 0), max(height - h, 0)))
            rect = (cx, cy, cx + w, cy + h)
            cost = sum(_overlap(rect, other) for other in placed)
            if best_cost is None or cost < best_cost:
                best, best_cost = (cx, cy), cost
            if cost == 0:
                break
        corners.append(best)
        placed.append((best[0], best[1], best[0] + w, best[1] + h))
    return corners


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light label backgrounds, white on dark ones (relative luminance)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw_instances(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: Sequence[str],
    classes: Sequence[int],
    masks: torch.Tensor | None = None,
    num_classes: int | None = None,
    *,
    colors: Sequence[tuple[int, int, int]] | None = None,
    min_size: int = 0,
) -> torch.Tensor:
    """Draw instances on an image, enlarged first when it is small.

    Args:
        image: ``uint8 Tensor[3, H, W]`` RGB.
        boxes: ``Tensor[N, 4]`` XYXY in the image's pixels.
        labels: N captions (e.g. ``"star 0.93"``), placed in this order (put the best first).
        classes: N class indices (choose the colours when ``colors`` is not given).
        masks: optional ``BoolTensor[N, H, W]``; blended and outlined.
        num_classes: size of the index palette (default: ``max(classes) + 1``).
        colors: N RGB colours (e.g. from a :class:`ClassPalette`), overriding ``classes``.
        min_size: enlarge (nearest neighbour, by an integer factor) until the longer side is at
            least this many pixels (:data:`DEFAULT_MIN_DRAW_SIZE` suits 128-pixel OV-Shapes
            images); 0 (the default) draws at the input's size.

    Returns:
        ``uint8 Tensor[3, s*H, s*W]`` with ``s`` = :func:`drawing_scale`.
    """
    scale = drawing_scale(image.shape[-2], image.shape[-1], min_size)
    out = image.repeat_interleave(scale, -2).repeat_interleave(scale, -1) if scale > 1 else image
    if len(boxes) == 0:
        return out.clone()
    if colors is None:
        palette = class_colors(num_classes or (max(classes) + 1))
        colors = [palette[c] for c in classes]
    colors = [tuple(int(v) for v in c) for c in colors]
    side = max(out.shape[-2:])
    line = max(1, round(side / 256))
    if masks is not None and len(masks):
        # outlines at the input's resolution, then enlarged with the masks (cheaper, as thick)
        outlines = mask_outlines(masks, max(1, line // scale))
        masks = masks.bool()
        if scale > 1:
            masks = masks.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
            outlines = outlines.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
        out = draw_segmentation_masks(out, masks, alpha=0.4, colors=list(colors))
        for outline, color in zip(outlines, colors):
            out[:, outline] = torch.tensor(color, dtype=torch.uint8)[:, None]
    canvas = Image.fromarray(out.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, round(side / 32)))
    scaled = (boxes.float() * scale).tolist()
    for (x1, y1, x2, y2), color in zip(scaled, colors):
        draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
    pad = max(1, line)
    sizes = []
    for text in labels:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        sizes.append((int(right - left) + 2 * pad, int(bottom - top) + 2 * pad))
    corners = place_labels(scaled, sizes, (canvas.height, canvas.width))
    for text, (x, y), (w, h), color in zip(labels, corners, sizes, colors):
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=color)
        left, top, _, _ = draw.textbbox((0, 0), text, font=font)
        draw.text((x + pad - left, y + pad - top), text, fill=_text_color(color), font=font)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def draw_predictions(
    image: np.ndarray,
    instances: Instances,
    names: Sequence[str],
    *,
    colors: Sequence[tuple[int, int, int]] | None = None,
    min_size: int = 0,
) -> np.ndarray:
    """Draw a detector's predictions labelled ``"<class name> <score>"``, in their given order.

    Args:
        image: ``ndarray[H, W, 3]`` uint8 RGB.
        instances: ``pred_boxes``, ``scores``, ``pred_classes`` (indexing ``names``) and
            optionally ``pred_masks`` (``BoolTensor[N, H, W]``).
        names: class names.
        colors: N RGB colours (e.g. from a :class:`ClassPalette`); default: by class index.
        min_size: enlarge a smaller image to at least this side before drawing.

    Returns:
        ``ndarray[H', W', 3]`` uint8 RGB (``H' = H`` unless enlarged).
    """
    classes = instances.pred_classes.tolist()
    labels = [f"{names[c]} {s:.2f}" for c, s in zip(classes, instances.scores.tolist())]
    drawn = draw_instances(
        torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1),
        instances.pred_boxes.tensor,
        labels,
        classes,
        instances.pred_masks if instances.has("pred_masks") else None,
        num_classes=len(names),
        colors=colors,
        min_size=min_size,
    )
    return drawn.permute(1, 2, 0).numpy()


def save_predictions_drawing(
    image: np.ndarray, instances: Instances, names: Sequence[str], path: str
) -> None:
    """:func:`draw_predictions` written to ``path`` as PNG (its folder created)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(draw_predictions(image, instances, names)).save(path, "PNG")
