"""Axis-aligned boxes in (x1, y1, x2, y2) absolute pixel coordinates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torchvision.ops import box_area, box_iou


class Boxes:
    """A list of N boxes stored as a ``Tensor[N, 4]`` of (x1, y1, x2, y2).

    Args:
        tensor: ``Tensor[N, 4]`` (or anything ``torch.as_tensor`` accepts); an empty input becomes
            ``Tensor[0, 4]``.
    """

    def __init__(self, tensor: torch.Tensor | Any):
        device = tensor.device if isinstance(tensor, torch.Tensor) else torch.device("cpu")
        tensor = torch.as_tensor(tensor, dtype=torch.float32, device=device)
        if tensor.numel() == 0:
            tensor = tensor.reshape(0, 4)
        if tensor.dim() != 2 or tensor.shape[-1] != 4:
            raise ValueError(f"Boxes expects a Tensor[N, 4], got shape {tuple(tensor.shape)}")
        self.tensor = tensor

    def clone(self) -> Boxes:
        return Boxes(self.tensor.clone())

    def to(self, *args: Any, **kwargs: Any) -> Boxes:
        return Boxes(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def area(self) -> torch.Tensor:
        """``Tensor[N]`` box areas."""
        return box_area(self.tensor)

    def clip(self, image_size: tuple[int, int]) -> None:
        """Clip boxes in place to an image of ``(height, width)``."""
        h, w = image_size
        self.tensor[:, 0::2] = self.tensor[:, 0::2].clamp(min=0, max=w)
        self.tensor[:, 1::2] = self.tensor[:, 1::2].clamp(min=0, max=h)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """``BoolTensor[N]``: True where both sides are longer than ``threshold``."""
        widths = self.tensor[:, 2] - self.tensor[:, 0]
        heights = self.tensor[:, 3] - self.tensor[:, 1]
        return (widths > threshold) & (heights > threshold)

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale coordinates in place (e.g. after resizing the image)."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    def get_centers(self) -> torch.Tensor:
        """``Tensor[N, 2]`` box centres (x, y)."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def __getitem__(self, item: int | slice | torch.Tensor) -> Boxes:
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        return Boxes(self.tensor[item])

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        yield from self.tensor

    def __repr__(self) -> str:
        return f"Boxes({self.tensor})"

    @classmethod
    def cat(cls, boxes_list: list[Boxes]) -> Boxes:
        if not boxes_list:
            return cls(torch.empty(0, 4))
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """``Tensor[N, M]`` IoU between every pair of boxes."""
    return box_iou(boxes1.tensor, boxes2.tensor)


def square_boxes(
    boxes: torch.Tensor, scale: float, image_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Square boxes around boxes, as CLIP sees objects: undistorted, with some context.

    The side is ``scale`` times the longer box side, centred on the box. With ``image_size``, a
    square that fits in the image is shifted to lie inside it (else it stays centred and the
    outside reads as padding).

    Args:
        boxes: ``Tensor[K, 4]`` (x1, y1, x2, y2).
        scale: side of the square relative to the longer box side.
        image_size: ``(h, w)`` of the image, or None for no shift.

    Returns:
        ``Tensor[K, 4]`` square boxes (x1, y1, x2, y2).
    """
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values * scale
    start = centre - side[:, None] / 2
    if image_size is not None:
        h, w = image_size
        limit = torch.tensor([w, h], dtype=boxes.dtype, device=boxes.device) - side[:, None]
        fits = limit >= 0
        start = torch.where(fits, torch.minimum(start.clamp(min=0), limit.clamp(min=0)), start)
    return torch.cat([start, start + side[:, None]], dim=1)
