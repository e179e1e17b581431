"""LVIS v1 with the open-vocabulary split (novel = rare): loader, metadata, base-only json."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ..sanitize import DropCounter
from .coco_ov import (
    category_fields,
    convert_annotations,
    group_annotations,
    image_record,
)
from .json_io import read_json, register_json_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "lvis_category_fields",
    "load_lvis_json",
    "make_lvis_base_json",
    "register_lvis_ov_instances",
]


def lvis_category_fields(
    data: dict[str, Any], novel_classes: Sequence[str] | None = None
) -> dict[str, Any]:
    """The fields of :func:`~.coco_ov.category_fields` plus LVIS's per-class information.

    Args:
        data: the parsed LVIS json; its ``categories`` have ``id``, ``name``, ``synonyms``,
            ``frequency``, ``image_count`` and optionally ``split``; a base-only json lists the
            rare categories under ``novel_categories``.
        novel_classes: novel names; ``None`` = as :func:`~.coco_ov.category_fields` when the json
            carries a split, else the rare (``frequency == "r"``) categories.

    Returns:
        ``thing_classes``, ``thing_dataset_id_to_contiguous_id``, ``base_classes``,
        ``novel_classes``, and per contiguous id: ``synonyms`` (list of lists of names),
        ``class_frequency`` (``"r"``/``"c"``/``"f"``) and ``class_image_count``.
    """
    cats = sorted(data["categories"], key=lambda c: c["id"])
    has_split = "novel_categories" in data or any("split" in c for c in cats)
    if novel_classes is None and not has_split:
        novel_classes = [c["name"] for c in cats if c.get("frequency") == "r"]
    fields = category_fields(data, novel_classes)
    fields["synonyms"] = [list(c.get("synonyms", [c["name"]])) for c in cats]
    fields["class_frequency"] = [c.get("frequency", "f") for c in cats]
    fields["class_image_count"] = [int(c.get("image_count", 0)) for c in cats]
    return fields


def load_lvis_json(
    json_file: str, image_root: str, dataset_name: str | None = None
) -> list[dict[str, Any]]:
    """Load an LVIS v1 json as dataset dicts.

    Besides the keys of :func:`~.coco_ov.load_coco_json`, each dict has ``neg_category_ids`` and
    ``not_exhaustive_category_ids`` as contiguous ids. ``file_name`` is ``image_root`` joined with
    the image's ``file_name`` field or, as in the official files, the last two parts of its
    ``coco_url`` (``train2017/000000391895.jpg``), so ``image_root`` is the COCO folder.
    """
    name = dataset_name or json_file
    data = read_json(json_file, dataset_name)
    id_map = category_fields(data)["thing_dataset_id_to_contiguous_id"]
    counter = DropCounter(name)
    anns_by_image = group_annotations(data["annotations"], json_file)
    dicts = []
    for img in data["images"]:
        record = _lvis_image_record(img, image_root, json_file)
        for key in ("neg_category_ids", "not_exhaustive_category_ids"):
            record[key] = _map_ids(img.get(key, []), id_map, json_file, img["id"], key)
        record["annotations"] = convert_annotations(
            anns_by_image.get(img["id"], []), record, id_map, counter, json_file
        )
        dicts.append(record)
    counter.log()
    logger.info("Loaded %d images from %s", len(dicts), json_file)
    return dicts


def _lvis_image_record(img: dict[str, Any], image_root: str, json_file: str) -> dict[str, Any]:
    if "file_name" in img:
        return image_record(img, image_root, json_file)
    if "coco_url" not in img:
        raise ValueError(f"{json_file}: image {img.get('id')} has neither file_name nor coco_url")
    relative = os.path.join(*img["coco_url"].split("/")[-2:])
    return image_record(img, image_root, json_file, relative_path=relative)


def _map_ids(
    ids: list[int], id_map: dict[int, int], json_file: str, image_id: int, key: str
) -> list[int]:
    unknown = [i for i in ids if i not in id_map]
    if unknown:
        raise ValueError(f"{json_file}: image {image_id} {key} has unknown category ids {unknown}")
    return sorted(id_map[i] for i in ids)


def register_lvis_ov_instances(
    name: str, json_file: str, image_root: str, novel_classes: Sequence[str] | None = None
) -> None:
    """Register an LVIS-format json (evaluator type ``"lvis_ov"``); nothing is read now.

    Args:
        name: dataset name.
        json_file: LVIS json.
        image_root: the COCO image folder (see :func:`load_lvis_json`).
        novel_classes: novel names; ``None`` = the json's split, else its rare categories.
    """
    register_json_dataset(
        name,
        json_file,
        image_root,
        load_lvis_json,
        "lvis_ov",
        lambda data: lvis_category_fields(data, novel_classes),
    )


def make_lvis_base_json(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of an LVIS json with every rare category and all knowledge of it removed.

    Rare categories, their annotations and their ids in ``neg_category_ids`` /
    ``not_exhaustive_category_ids`` are removed (a negative label also tells the detector about
    a rare class); the kept categories gain ``"split": "base"`` and the rare ones are listed
    under ``novel_categories`` with ``"split": "novel"``. Every image stays.
    """
    rare = {c["id"] for c in data["categories"] if c["frequency"] == "r"}
    out = {k: v for k, v in data.items() if k not in ("categories", "annotations", "images")}
    out["categories"] = [{**c, "split": "base"} for c in data["categories"] if c["id"] not in rare]
    out["novel_categories"] = [
        {**c, "split": "novel"} for c in data["categories"] if c["id"] in rare
    ]
    out["annotations"] = [a for a in data["annotations"] if a["category_id"] not in rare]
    out["images"] = [
        {
            **img,
            "neg_category_ids": [i for i in img.get("neg_category_ids", []) if i not in rare],
            "not_exhaustive_category_ids": [
                i for i in img.get("not_exhaustive_category_ids", []) if i not in rare
            ],
        }
        for img in data["images"]
    ]
    return out
