"""COCO-format instance datasets with an open-vocabulary (base/novel) split.

Dataset dicts follow detectron2's layout; ``bbox`` is always XYWH in absolute pixels and
``category_id`` is already the contiguous id (the index into ``thing_classes``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ovvision.structures.builtin_classes import COCO_OV_BASE_CLASSES, COCO_OV_NOVEL_CLASSES

from ..sanitize import DropCounter, sanitize_annotation
from .json_io import read_json, register_json_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "COCO_OV_BASE_CLASSES",
    "COCO_OV_NOVEL_CLASSES",
    "category_fields",
    "coco_json_to_dicts",
    "load_coco_json",
    "make_ov_split_json",
    "register_coco_ov_instances",
]


def category_fields(
    data: dict[str, Any], novel_classes: Sequence[str] | None = None
) -> dict[str, Any]:
    """Metadata fields derived from the categories of a parsed COCO-format json.

    Args:
        data: the json; its ``categories`` (``id``, ``name``, optional ``"split"``) are the
            dataset's classes. An optional top-level ``novel_categories`` list names classes held
            out of a base-only training json (they are not among its ``categories``).
        novel_classes: novel class names; ``None`` = the ``categories`` whose ``"split"`` is
            ``"novel"`` plus every ``novel_categories`` entry.

    Returns:
        ``thing_classes`` (names sorted by json id; index = contiguous id),
        ``thing_dataset_id_to_contiguous_id``, ``base_classes`` (thing classes that are not novel)
        and ``novel_classes`` (may name classes outside ``thing_classes``).
    """
    cats = sorted(data["categories"], key=lambda c: c["id"])
    names = [c["name"] for c in cats]
    if len(set(names)) != len(names):
        raise ValueError(f"Category names are not unique: {names}")
    if novel_classes is None:
        held_out = sorted(data.get("novel_categories", []), key=lambda c: c["id"])
        novel = [c["name"] for c in cats if c.get("split") == "novel"]
        novel += [c["name"] for c in held_out]
    else:
        novel = list(novel_classes)
    novel_set = set(novel)
    return {
        "thing_classes": names,
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats)},
        "base_classes": [n for n in names if n not in novel_set],
        "novel_classes": novel,
    }


def load_coco_json(
    json_file: str,
    image_root: str,
    dataset_name: str | None = None,
    captions_json: str | None = None,
) -> list[dict[str, Any]]:
    """Load a COCO instances json as detectron2-style dataset dicts.

    Each dict has ``file_name``, ``image_id``, ``height``, ``width``, ``annotations`` and, when
    ``captions_json`` is given, ``captions``. Each annotation has ``id``, ``bbox`` (XYWH absolute,
    clipped to the image), ``category_id`` (contiguous), ``iscrowd`` and, when present,
    ``segmentation`` (polygons or RLE with ``str`` counts). Annotations are sanitised by
    :func:`~ovvision.data.sanitize.sanitize_annotation`; drops are counted and logged once.

    Raises:
        FileNotFoundError: a json file is missing (the message names it).
        ValueError: an image lacks ``height``/``width``, an annotation names an unknown category
            or image, or annotation ids repeat; the message names the json and the offending id.
    """
    data = read_json(json_file, dataset_name)
    captions = captions_by_image(captions_json, dataset_name) if captions_json else None
    return coco_json_to_dicts(data, json_file, image_root, dataset_name, captions)


def coco_json_to_dicts(
    data: dict[str, Any],
    json_file: str,
    image_root: str,
    dataset_name: str | None = None,
    captions: dict[int, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """The dataset dicts of :func:`load_coco_json` from an already parsed json ``data``."""
    id_map = category_fields(data)["thing_dataset_id_to_contiguous_id"]
    counter = DropCounter(dataset_name or json_file)
    anns_by_image = group_annotations(data.get("annotations", []), json_file)
    orphans = set(anns_by_image) - {img["id"] for img in data["images"]}
    if orphans:
        raise ValueError(f"{json_file}: annotations refer to unknown image ids {sorted(orphans)}")
    dicts = []
    for img in data["images"]:
        record = image_record(img, image_root, json_file)
        record["annotations"] = convert_annotations(
            anns_by_image.get(img["id"], []), record, id_map, counter, json_file
        )
        if captions is not None:
            record["captions"] = captions.get(img["id"], [])
        dicts.append(record)
    counter.log()
    logger.info("Loaded %d images from %s", len(dicts), json_file)
    return dicts


def image_record(
    img: dict[str, Any], image_root: str, json_file: str, relative_path: str | None = None
) -> dict[str, Any]:
    """``file_name``, ``image_id``, ``height``, ``width`` of one json image entry.

    ``file_name`` is ``image_root`` joined with ``relative_path`` (default: the entry's
    ``file_name``).
    """
    required = ("id", "height", "width") + (("file_name",) if relative_path is None else ())
    missing = [k for k in required if k not in img]
    if missing:
        raise ValueError(f"{json_file}: image {img.get('id', img)} lacks the fields {missing}")
    return {
        "file_name": os.path.join(image_root, relative_path or img["file_name"]),
        "image_id": img["id"],
        "height": int(img["height"]),
        "width": int(img["width"]),
    }


def group_annotations(anns: list[dict[str, Any]], json_file: str) -> dict[int, list[dict]]:
    """Annotations by ``image_id``; repeated annotation ids raise ``ValueError``."""
    by_image: dict[int, list[dict]] = defaultdict(list)
    seen: set[int] = set()
    for ann in anns:
        if ann["id"] in seen:
            raise ValueError(f"{json_file}: annotation id {ann['id']} appears more than once")
        seen.add(ann["id"])
        by_image[ann["image_id"]].append(ann)
    return by_image


def convert_annotations(
    anns: list[dict[str, Any]],
    record: dict[str, Any],
    id_map: dict[int, int],
    counter: DropCounter,
    json_file: str,
) -> list[dict[str, Any]]:
    """Sanitised annotations of one image with contiguous ``category_id``."""
    out = []
    for ann in anns:
        if ann["category_id"] not in id_map:
            raise ValueError(
                f"{json_file}: annotation {ann['id']} has category_id {ann['category_id']}, "
                f"which is not in the file's categories"
            )
        clean = sanitize_annotation(ann, record["width"], record["height"], counter)
        if clean is None:
            continue
        obj = {
            "id": clean["id"],
            "bbox": clean["bbox"],
            "category_id": id_map[clean["category_id"]],
            "iscrowd": clean["iscrowd"],
        }
        if "segmentation" in clean:
            obj["segmentation"] = clean["segmentation"]
        out.append(obj)
    return out


def captions_by_image(
    captions_json: str, dataset_name: str | None, data: dict[str, Any] | None = None
) -> dict[int, list[str]]:
    """Captions of a COCO captions json (``data`` if already parsed) by image id, in id order."""
    if data is None:
        data = read_json(captions_json, dataset_name)
    captions: dict[int, list[str]] = defaultdict(list)
    for ann in sorted(data["annotations"], key=lambda a: a["id"]):
        captions[ann["image_id"]].append(ann["caption"].strip())
    return captions


def register_coco_ov_instances(
    name: str,
    json_file: str,
    image_root: str,
    novel_classes: Sequence[str] | None = None,
    *,
    captions_json: str | None = None,
    evaluator_type: str = "coco_ov",
) -> None:
    """Register a COCO-format instances json (e.g. a user's own dataset) in one call.

    Nothing is read now; the json is parsed when the dataset or a class-list metadata field is
    first used. Training on ``name`` then treats ``novel_classes`` as unseen.

    Args:
        name: dataset name, e.g. ``"my_dataset_train"``.
        json_file: COCO instances json.
        image_root: folder that the json's ``file_name`` entries are relative to.
        novel_classes: names of the novel classes; ``None`` reads them from the json (see
            :func:`category_fields`: ``"split"`` fields and ``novel_categories``).
        captions_json: optional COCO captions json whose captions are attached per image.
        evaluator_type: ``MetadataCatalog`` field that selects the evaluator.
    """
    meta = register_json_dataset(
        name,
        json_file,
        image_root,
        functools.partial(load_coco_json, captions_json=captions_json),
        evaluator_type,
        lambda data: category_fields(data, novel_classes),
    )
    if captions_json:
        meta.set(captions_json=captions_json)


def make_ov_split_json(
    data: dict[str, Any], base_classes: Sequence[str], novel_classes: Sequence[str], keep: str
) -> dict[str, Any]:
    """An open-vocabulary copy of a COCO-format json.

    Args:
        data: the parsed json (not modified).
        base_classes: names of the base classes.
        novel_classes: names of the novel classes.
        keep: ``"base"`` keeps only base categories and their annotations (the training json);
            ``"all"`` keeps base and novel (the generalized evaluation json). Every image stays,
            so novel objects remain in training images, unannotated. Kept categories gain
            ``"split": "base" | "novel"``; with ``"base"`` the novel categories are listed under
            the top-level key ``novel_categories`` (see :func:`category_fields`).

    Raises:
        ValueError: a named class is not among the json's categories, or ``keep`` is unknown.
    """
    if keep not in ("base", "all"):
        raise ValueError(f"make_ov_split_json: keep must be 'base' or 'all', got {keep!r}")
    known = {c["name"] for c in data["categories"]}
    unknown = sorted((set(base_classes) | set(novel_classes)) - known)
    if unknown:
        raise ValueError(f"Classes {unknown} are not in the json's categories")
    base, novel = set(base_classes), set(novel_classes)
    tagged = [
        {**c, "split": "novel" if c["name"] in novel else "base"}
        for c in data["categories"]
        if c["name"] in base | novel
    ]
    keep_novel = keep == "all"
    categories = [c for c in tagged if keep_novel or c["split"] == "base"]
    kept_ids = {c["id"] for c in categories}
    out = {k: v for k, v in data.items() if k not in ("categories", "annotations")}
    out["categories"] = categories
    if not keep_novel:
        out["novel_categories"] = [c for c in tagged if c["split"] == "novel"]
    out["annotations"] = [a for a in data["annotations"] if a["category_id"] in kept_ids]
    return out
