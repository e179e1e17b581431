"""Referring-expression datasets: a COCO instances json plus a ``refs`` list.

File format (OV-Shapes writes it; RefCOCO-style data can be converted to it)::

    {"images": [...], "categories": [...], "annotations": [...],      # COCO instances
     "refs": [{"id": 7, "image_id": 1, "ann_id": 101, "category_id": 3,
               "bbox": [x, y, w, h], "expression": "the small red heart"}, ...]}

Each ref identifies exactly one annotation of its image.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from ..sanitize import DropCounter
from .coco_ov import category_fields, coco_json_to_dicts
from .json_io import read_json, register_json_dataset

logger = logging.getLogger(__name__)

__all__ = ["load_refexp_json", "register_refexp"]


def load_refexp_json(
    json_file: str, image_root: str, dataset_name: str | None = None
) -> list[dict[str, Any]]:
    """Dataset dicts of :func:`~.coco_ov.load_coco_json` plus ``expressions``.

    ``expressions`` is a list of ``{"id", "text", "ann_id", "bbox" (XYWH absolute, the referred
    annotation's sanitised box), "category_id" (contiguous)}``. A ref whose annotation was dropped
    by sanitising is dropped and counted.
    """
    name = dataset_name or json_file
    data = read_json(json_file, dataset_name)
    dicts = coco_json_to_dicts(data, json_file, image_root, dataset_name)
    refs_by_image: dict[int, list[dict]] = defaultdict(list)
    for ref in data.get("refs", []):
        refs_by_image[ref["image_id"]].append(ref)
    counter = DropCounter(name)
    for record in dicts:
        anns = {a["id"]: a for a in record["annotations"]}
        record["expressions"] = []
        for ref in refs_by_image.get(record["image_id"], []):
            ann = anns.get(ref["ann_id"])
            if ann is None:
                counter.add("expressions dropped: referred annotation missing or dropped")
                continue
            record["expressions"].append(
                {
                    "id": ref["id"],
                    "text": ref["expression"],
                    "ann_id": ann["id"],
                    "bbox": list(ann["bbox"]),
                    "category_id": ann["category_id"],
                }
            )
    counter.log()
    return dicts


def register_refexp(name: str, json_file: str, image_root: str) -> None:
    """Register a referring-expression json (evaluator type ``"grounding"``); reads nothing now."""
    register_json_dataset(
        name, json_file, image_root, load_refexp_json, "grounding", category_fields
    )
