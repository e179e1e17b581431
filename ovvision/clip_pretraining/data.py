"""Image–text pairs for CLIP pretraining: reading, cropping, augmenting, batching.

Two kinds of registered datasets feed it:

- pretraining pairs (OV-Shapes ``pretrain_pairs_*.json``): one dict per pair with ``caption``,
  ``kind`` (``"object"`` | ``"scene"``) and ``crop_box`` (``[x, y, w, h]`` or None);
- COCO-format captions (``captions_*.json``): one dict per image with ``captions``; every caption
  becomes a whole-image pair.

A batch is ``{"images": FloatTensor[B, 3, S, S] normalised, "tokens": LongTensor[B, L]}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from ovvision.data import TrainingSampler, read_image

__all__ = [
    "ImagePreprocessor",
    "ImageTextPair",
    "ImageTextPairDataset",
    "build_pair_loader",
    "pairs_from_dataset_dicts",
    "read_rgb",
]


def read_rgb(path: str) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB image (ovvision's robust reader)."""
    return read_image(path, format="RGB")


@dataclass(frozen=True)
class ImageTextPair:
    """One training pair: an image (or a square region of it) and its caption.

    Attributes:
        file_name: the image file.
        caption: the text.
        crop_box: ``(x, y, w, h)`` region in pixels, or None for the whole image.
        is_object: True for a single-object crop (geometric augmentation keeps its caption
            true; scene captions name left/right/above/below and are not flipped).
    """

    file_name: str
    caption: str
    crop_box: tuple[float, float, float, float] | None
    is_object: bool


def pairs_from_dataset_dicts(dicts: Sequence[dict[str, Any]], name: str) -> list[ImageTextPair]:
    """Pairs of a pretraining-pairs or COCO-captions dataset.

    Raises:
        ValueError: the dicts have neither ``caption`` nor ``captions``, or give no pair.
    """
    pairs: list[ImageTextPair] = []
    for d in dicts:
        if "caption" in d:
            box = d.get("crop_box")
            pairs.append(
                ImageTextPair(
                    d["file_name"],
                    d["caption"],
                    None if box is None else tuple(float(v) for v in box),
                    d.get("kind") == "object",
                )
            )
        elif "captions" in d:
            pairs.extend(ImageTextPair(d["file_name"], c, None, False) for c in d["captions"])
        else:
            raise ValueError(
                f"dataset '{name}' is not an image-text dataset: its dicts have neither "
                "'caption' (pretraining pairs) nor 'captions' (COCO captions)"
            )
    if not pairs:
        raise ValueError(f"dataset '{name}' has no image-text pairs")
    return pairs


class ImagePreprocessor:
    """Crop, resize and normalise images for an open_clip image tower.

    Args:
        size: side S of the square model input.
        mean: per-channel RGB mean in [0, 1] (open_clip's ``preprocess_cfg["mean"]``).
        std: per-channel RGB std in [0, 1].
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = int(size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    @classmethod
    def for_model(cls, preprocess_cfg: dict) -> ImagePreprocessor:
        """From open_clip's ``get_model_preprocess_cfg(model)``."""
        size = preprocess_cfg["size"]
        size = size if isinstance(size, int) else size[0]
        return cls(size, preprocess_cfg["mean"], preprocess_cfg["std"])

    def crop(self, image: torch.Tensor, box: Sequence[float] | None) -> torch.Tensor:
        """uint8 ``[3, S, S]`` of ``image`` (uint8 ``[3, H, W]``) cut to ``box`` (x, y, w, h);
        parts of the box outside the image are zero."""
        if box is None:
            x, y, w, h = 0.0, 0.0, float(image.shape[2]), float(image.shape[1])
        else:
            x, y, w, h = box
        top, left = math.floor(y), math.floor(x)
        height, width = max(1, math.ceil(y + h) - top), max(1, math.ceil(x + w) - left)
        return TF.resized_crop(
            image, top, left, height, width, [self.size, self.size], antialias=True
        )

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """FloatTensor[B, 3, S, S] from uint8 images [B, 3, S, S]."""
        return (images.float() / 255.0 - self.mean) / self.std


class ImageTextPairDataset(Dataset):
    """Cropped, optionally augmented uint8 images with their captions.

    Images are decoded once and kept in memory (OV-Shapes: 4,000 images of 128x128 = 200 MB).

    Args:
        pairs: the pairs.
        preprocessor: gives the crop size.
        augment: jitter object crops (shift and scale by up to ``jitter`` of their side) and
            apply a random flip / 90-degree rotation to them.
        jitter: see ``augment``.
        seed: seed of the augmentation's random stream (per index, so workers agree).
    """

    def __init__(
        self,
        pairs: Sequence[ImageTextPair],
        preprocessor: ImagePreprocessor,
        *,
        augment: bool = False,
        jitter: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.pairs = list(pairs)
        self.preprocessor = preprocessor
        self.augment = augment
        self.jitter = jitter
        self.seed = seed
        self._images: dict[str, torch.Tensor] = {}
        self._draws = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def _image(self, file_name: str) -> torch.Tensor:
        if file_name not in self._images:
            self._images[file_name] = torch.from_numpy(read_rgb(file_name)).permute(2, 0, 1)
        return self._images[file_name]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        pair = self.pairs[index]
        image = self._image(pair.file_name)
        if not (self.augment and pair.is_object):
            return self.preprocessor.crop(image, pair.crop_box), pair.caption
        self._draws += 1
        rng = np.random.default_rng([self.seed, index, self._draws])
        x, y, w, h = pair.crop_box or (0, 0, image.shape[2], image.shape[1])
        scale = 1.0 + rng.uniform(-self.jitter, self.jitter)
        dx, dy = rng.uniform(-self.jitter, self.jitter, size=2) * w
        cx, cy = x + w / 2 + dx, y + h / 2 + dy
        crop = self.preprocessor.crop(
            image, (cx - scale * w / 2, cy - scale * h / 2, scale * w, scale * h)
        )
        crop = torch.rot90(crop, int(rng.integers(4)), dims=(1, 2))
        return (crop.flip(2) if rng.random() < 0.5 else crop), pair.caption


class _Collate:
    """Stack crops, normalise them and tokenize captions (picklable for worker processes)."""

    def __init__(self, preprocessor: ImagePreprocessor, tokenizer: Callable) -> None:
        self.preprocessor = preprocessor
        self.tokenizer = tokenizer

    def __call__(self, batch: list[tuple[torch.Tensor, str]]) -> dict[str, torch.Tensor]:
        images = torch.stack([image for image, _ in batch])
        return {
            "images": self.preprocessor.normalize(images),
            "tokens": self.tokenizer([caption for _, caption in batch]),
        }


def build_pair_loader(
    dataset: ImageTextPairDataset,
    tokenizer: Callable,
    batch_size: int,
    *,
    num_workers: int = 0,
    seed: int | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """An endless, rank-sharded stream of training batches.

    Args:
        dataset: the pairs.
        tokenizer: open_clip tokenizer (texts -> LongTensor[B, L]).
        batch_size: pairs per batch on this process.
        num_workers: DataLoader worker processes.
        seed: seed of the shuffling (None = a seed shared by all ranks).
    """
    sampler = TrainingSampler(len(dataset), shuffle=True, seed=seed)
    loader = DataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, batch_size, drop_last=True),
        collate_fn=_Collate(dataset.preprocessor, tokenizer),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    return iter(loader)
