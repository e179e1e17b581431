"""A batch of images of different sizes, padded into one tensor."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class ImageList:
    """Images padded to a common size, with each image's original size kept.

    Attributes:
        tensor: ``Tensor[B, C, H, W]`` padded batch.
        image_sizes: ``(h, w)`` of each image before padding.
    """

    def __init__(self, tensor: torch.Tensor, image_sizes: list[tuple[int, int]]):
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx: int) -> torch.Tensor:
        """The ``Tensor[C, h, w]`` image ``idx`` without padding."""
        h, w = self.image_sizes[idx]
        return self.tensor[idx, ..., :h, :w]

    def to(self, *args: Any, **kwargs: Any) -> ImageList:
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors: list[torch.Tensor], size_divisibility: int = 0, pad_value: float = 0.0
    ) -> ImageList:
        """Pad ``Tensor[C, h_i, w_i]`` images (same C, dtype, device) to one batch.

        Args:
            tensors: images; all but the last two dimensions must match.
            size_divisibility: if > 0, pad height and width up to a multiple of it (what an FPN
                with stride ``size_divisibility`` needs).
            pad_value: value of padded pixels.
        """
        if not tensors:
            raise ValueError("ImageList.from_tensors needs at least one image")
        for t in tensors:
            if t.shape[:-2] != tensors[0].shape[:-2]:
                raise ValueError(
                    f"images differ in leading dims: {tuple(t.shape)} vs {tuple(tensors[0].shape)}"
                )
        image_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        max_h = max(h for h, _ in image_sizes)
        max_w = max(w for _, w in image_sizes)
        if size_divisibility > 1:
            s = size_divisibility
            max_h = (max_h + s - 1) // s * s
            max_w = (max_w + s - 1) // s * s
        batch = torch.stack(
            [
                F.pad(t, (0, max_w - t.shape[-1], 0, max_h - t.shape[-2]), value=pad_value)
                for t in tensors
            ]
        )
        return ImageList(batch, image_sizes)
