"""Image–text pairs for CLIP-style pretraining (OV-Shapes' ``pretrain_pairs_{train,val}.json``).

File format (documented in ``datasets/README.md``)::

    {"info": {...}, "categories": [{"id", "name", "split"}, ...],
     "images": [{"id", "file_name", "height", "width"}, ...],
     "pairs": [{"id", "image_id", "kind": "object" | "scene",
                "crop_box": [x, y, w, h] | null,     # object pairs: the region to crop
                "caption": "a small red heart",
                "category_id": 9 | null,             # object pairs: json category id
                "ann_id": 1203 | null}, ...]}
"""

from __future__ import annotations

from typing import Any

from .coco_ov import category_fields, image_record
from .json_io import read_json, register_json_dataset

__all__ = ["load_pretrain_pairs_json", "register_pretrain_pairs"]


def load_pretrain_pairs_json(
    json_file: str, image_root: str, dataset_name: str | None = None
) -> list[dict[str, Any]]:
    """One dict per pair, in file order.

    Each dict has ``id``, ``file_name`` (joined to ``image_root``), ``image_id``, ``height``,
    ``width``, ``kind`` (``"object"`` | ``"scene"``), ``crop_box`` (``[x, y, w, h]`` absolute
    pixels or ``None`` for the whole image), ``caption`` and ``category_id`` (contiguous id into
    ``thing_classes``, or ``None`` for scene pairs).
    """
    data = read_json(json_file, dataset_name)
    id_map = category_fields(data)["thing_dataset_id_to_contiguous_id"]
    images = {img["id"]: image_record(img, image_root, json_file) for img in data["images"]}
    out = []
    for pair in data["pairs"]:
        if pair["image_id"] not in images:
            raise ValueError(f"{json_file}: pair {pair['id']} refers to unknown image")
        category = pair.get("category_id")
        if category is not None and category not in id_map:
            raise ValueError(f"{json_file}: pair {pair['id']} has unknown category {category}")
        out.append(
            {
                "id": pair["id"],
                **images[pair["image_id"]],
                "kind": pair["kind"],
                "crop_box": pair.get("crop_box"),
                "caption": pair["caption"],
                "category_id": None if category is None else id_map[category],
            }
        )
    return out


def register_pretrain_pairs(name: str, json_file: str, image_root: str) -> None:
    """Register a pretraining-pairs json (evaluator type ``"zero_shot"``); reads nothing now."""
    register_json_dataset(
        name, json_file, image_root, load_pretrain_pairs_json, "zero_shot", category_fields
    )
