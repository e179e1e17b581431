"""COCO-format caption datasets (``captions_train2017.json`` and OV-Shapes' captions)."""

from __future__ import annotations

from typing import Any

from .coco_ov import captions_by_image, image_record
from .json_io import read_json, register_json_dataset

__all__ = ["load_coco_captions_json", "register_coco_captions"]


def load_coco_captions_json(
    json_file: str, image_root: str, dataset_name: str | None = None
) -> list[dict[str, Any]]:
    """Dataset dicts with ``file_name``, ``image_id``, ``height``, ``width`` and ``captions``.

    Captions keep the order of their annotation ids; images without captions are kept with an
    empty list. The dicts have no ``annotations`` key (captions only).
    """
    data = read_json(json_file, dataset_name)
    captions = captions_by_image(json_file, dataset_name, data)
    dicts = []
    for img in data["images"]:
        record = image_record(img, image_root, json_file)
        record["captions"] = captions.get(img["id"], [])
        dicts.append(record)
    return dicts


def register_coco_captions(name: str, json_file: str, image_root: str) -> None:
    """Register a COCO captions json (evaluator type ``"caption"``); nothing is read now."""
    register_json_dataset(name, json_file, image_root, load_coco_captions_json, "caption")
