"""Referring-expression datasets in three layouts, all loaded as dataset dicts with
``expressions``.

1. ovvision's own (OV-Shapes writes it): a COCO instances json plus a ``refs`` list::

    {"images": [...], "categories": [...], "annotations": [...],      # COCO instances
     "refs": [{"id": 7, "image_id": 1, "ann_id": 101, "category_id": 3,
               "bbox": [x, y, w, h], "expression": "the small red heart"}, ...]}

   Each ref identifies exactly one annotation of its image.

2. MDETR's RefCOCO/+/g files (``final_refcoco_{train,val,testA,testB}.json``): each "image" entry
   is one (image, expression) pair with ``caption``, ``file_name``, ``original_img_id``, and one
   annotation (``bbox``, ``category_id``, ``tokens_positive``: character spans of the caption
   that name the object). Entries of the same picture become one dataset dict.

3. The OV-VG layout: COCO instances whose annotations carry their expression (``expression``,
   ``sentence`` or ``caption``, a string or a list of strings), categories with a ``split``
   ("base"/"novel").
"""

from __future__ import annotations

import functools
import logging
import os
from collections import defaultdict
from typing import Any

from ..sanitize import DropCounter, clip_box_xywh
from .coco_ov import category_fields, coco_json_to_dicts
from .json_io import read_json, register_json_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "load_mdetr_refexp_json",
    "load_ovvg_json",
    "load_refexp_json",
    "register_mdetr_refexp",
    "register_ovvg",
    "register_refexp",
]

_OVVG_TEXT_KEYS = ("expression", "sentence", "caption")


def load_refexp_json(
    json_file: str, image_root: str, dataset_name: str | None = None, base_only: bool = False
) -> list[dict[str, Any]]:
    """Dataset dicts of :func:`~.coco_ov.load_coco_json` plus ``expressions``.

    ``expressions`` is a list of ``{"id", "text", "ann_id", "bbox" (XYWH absolute, the referred
    annotation's sanitised box), "category_id" (contiguous)}``. A ref whose annotation was dropped
    by sanitising is dropped and counted; with ``base_only``, so is every ref to an object of a
    novel category (grounding training sees base categories only).
    """
    return _with_refs(
        read_json(json_file, dataset_name), json_file, image_root, dataset_name, base_only
    )


def _with_refs(
    data: dict[str, Any],
    json_file: str,
    image_root: str,
    dataset_name: str | None,
    base_only: bool,
) -> list[dict[str, Any]]:
    """Dataset dicts of a parsed COCO json with a ``refs`` list (layout 1)."""
    name = dataset_name or json_file
    dicts = coco_json_to_dicts(data, json_file, image_root, dataset_name)
    fields = category_fields(data)
    novel = {
        fields["thing_classes"].index(n)
        for n in fields["novel_classes"]
        if n in fields["thing_classes"]
    }
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
            if base_only and ann["category_id"] in novel:
                counter.add("expressions dropped: novel category (base-only split)")
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


def register_refexp(name: str, json_file: str, image_root: str, base_only: bool = False) -> None:
    """Register a referring-expression json (evaluator type ``"grounding"``); reads nothing now.

    ``base_only`` keeps only the expressions about base-category objects (a training split).
    """
    register_json_dataset(
        name,
        json_file,
        image_root,
        functools.partial(load_refexp_json, base_only=base_only),
        "grounding",
        category_fields,
    )


def load_ovvg_json(
    json_file: str, image_root: str, dataset_name: str | None = None, base_only: bool = False
) -> list[dict[str, Any]]:
    """Dataset dicts of an OV-VG layout json (layout 3): every expression of an annotation
    becomes a ref of it; see :func:`load_refexp_json` for the output."""
    data = read_json(json_file, dataset_name)
    refs = []
    for ann in data.get("annotations", []):
        texts = next((ann[k] for k in _OVVG_TEXT_KEYS if k in ann), [])
        for text in [texts] if isinstance(texts, str) else texts:
            refs.append({"id": len(refs), "image_id": ann["image_id"], "ann_id": ann["id"],
                         "expression": text})  # fmt: skip
    return _with_refs({**data, "refs": refs}, json_file, image_root, dataset_name, base_only)


def load_mdetr_refexp_json(
    json_file: str, image_root: str, dataset_name: str | None = None
) -> list[dict[str, Any]]:
    """Dataset dicts of an MDETR RefCOCO-format json (layout 2), one per picture.

    Each dict has ``file_name``, ``image_id`` (``original_img_id``), ``height``, ``width``,
    ``annotations`` (the referred objects, once each) and ``expressions`` (``{"id", "text",
    "ann_id", "bbox", "category_id", "phrase"}``; ``phrase``: the words of ``tokens_positive``).
    A box outside the image or of zero area drops its expression (counted).
    """
    name = dataset_name or json_file
    data = read_json(json_file, dataset_name)
    fields = category_fields(data)
    contiguous = fields["thing_dataset_id_to_contiguous_id"]
    anns_by_entry: dict[int, list[dict]] = defaultdict(list)
    for ann in data.get("annotations", []):
        anns_by_entry[ann["image_id"]].append(ann)
    counter = DropCounter(name)
    records: dict[int, dict[str, Any]] = {}
    for entry in data["images"]:
        image_id = int(entry.get("original_img_id", entry["id"]))
        record = records.setdefault(image_id, {
            "file_name": os.path.join(image_root, entry["file_name"]), "image_id": image_id,
            "height": entry["height"], "width": entry["width"], "annotations": [],
            "expressions": [],
        })  # fmt: skip
        for ann in anns_by_entry.get(entry["id"], []):
            bbox = clip_box_xywh(ann.get("bbox"), entry["width"], entry["height"], counter)
            if bbox is None:
                counter.add("expressions dropped: box empty after clipping to the image")
                continue
            ann_id = ann.get("original_id", ann["id"])
            category = contiguous[ann["category_id"]]
            if all(a["id"] != ann_id for a in record["annotations"]):
                record["annotations"].append({"id": ann_id, "bbox": bbox, "category_id": category,
                                              "iscrowd": 0})  # fmt: skip
            caption = entry["caption"]
            spans = ann.get("tokens_positive", [])
            record["expressions"].append({
                "id": entry["id"], "text": caption, "ann_id": ann_id, "bbox": bbox,
                "category_id": category, "phrase": " ".join(caption[a:b] for a, b in spans),
            })  # fmt: skip
    counter.log()
    return list(records.values())


def register_mdetr_refexp(name: str, json_file: str, image_root: str) -> None:
    """Register an MDETR RefCOCO-format json (evaluator type ``"grounding"``); reads nothing now."""
    register_json_dataset(
        name, json_file, image_root, load_mdetr_refexp_json, "grounding", category_fields
    )


def register_ovvg(name: str, json_file: str, image_root: str, base_only: bool = False) -> None:
    """Register an OV-VG layout json (evaluator type ``"grounding"``); reads nothing now."""
    register_json_dataset(
        name,
        json_file,
        image_root,
        functools.partial(load_ovvg_json, base_only=base_only),
        "grounding",
        category_fields,
    )
