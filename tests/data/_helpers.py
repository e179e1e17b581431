"""Helpers that write the small files the data tests use."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from ovvision.data.datasets import COCO_OV_BASE_CLASSES, COCO_OV_NOVEL_CLASSES

# The 15 COCO classes in neither split of COCO 48/17.
COCO_UNUSED_CLASSES = (
    "traffic light", "fire hydrant", "stop sign", "parking meter", "sports ball", "baseball bat",
    "baseball glove", "tennis racket", "wine glass", "hot dog", "potted plant", "dining table",
    "cell phone", "teddy bear", "hair drier",
)  # fmt: skip


def write_json(path: str, content: dict) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(content, f)
    return path


def write_image(path: str, width: int, height: int, seed: int = 0) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def coco_categories() -> list[dict]:
    """The 80 COCO class names with non-contiguous ids (1, 3, 5, ...)."""
    names = COCO_OV_BASE_CLASSES + COCO_OV_NOVEL_CLASSES + COCO_UNUSED_CLASSES
    return [{"id": 2 * i + 1, "name": n, "supercategory": "x"} for i, n in enumerate(names)]
