"""The final step: every shard of an output folder merged into one COCO-format dataset."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from ovvision.evaluation.coco_results import write_json_atomic
from ovvision.structures import ClassList
from ovvision.utils.file_io import atomic_write

from .inputs import is_local
from .shards import Row, read_shards

logger = logging.getLogger(__name__)

__all__ = [
    "ANNOTATIONS_FILE",
    "CLASSES_FILE",
    "SKIPPED_FILE",
    "image_root",
    "merge_shards",
    "to_coco",
]

ANNOTATIONS_FILE = "instances.json"
CLASSES_FILE = "classes.txt"
SKIPPED_FILE = "skipped.txt"


def image_root(keys: list[str]) -> str:
    """The folder the dataset's ``file_name``s are relative to: the deepest folder holding every
    local image, or ``""`` when some keys are URLs (their ``file_name`` is the whole URL)."""
    if not keys or not all(is_local(k) for k in keys):
        return ""
    return os.path.commonpath([os.path.dirname(k) for k in keys])


def _one_row_per_image(rows: list[Row]) -> dict[str, Row]:
    """Each key's row: its labelled one if any (a retried skip), else its first."""
    chosen: dict[str, Row] = {}
    repeats = 0
    for row in rows:
        old = chosen.get(row["key"])
        if old is None or (old["error"] and not row["error"]):
            chosen[row["key"]] = row
        else:
            repeats += not (old["error"] or row["error"])
    if repeats:
        logger.warning("%d images were labelled in more than one shard; kept the first", repeats)
    return chosen


def to_coco(rows: list[Row], classes: ClassList) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A COCO instances dataset of shard rows, and the skipped images.

    Images get ids 1..N in key order and annotations ids 1..M in image order then score order,
    so the same labels always give the same file, whatever the order shards were written in.

    Args:
        rows: shard rows (see :mod:`~ovvision.autolabel.shards`), possibly several per key.
        classes: the vocabulary; categories get ids 1..C in its order.

    Returns:
        The dataset (``images`` with ``file_name`` relative to ``info["image_root"]``,
        ``categories``, ``annotations`` with ``bbox``, ``segmentation`` (RLE), ``area``,
        ``iscrowd`` 0 and ``score``) and ``(key, reason)`` of every skipped image, by key.

    Raises:
        ValueError: a row names a category outside ``classes``.
    """
    chosen = _one_row_per_image(rows)
    labelled = sorted(k for k, row in chosen.items() if not row["error"])
    skipped = sorted((k, row["error"]) for k, row in chosen.items() if row["error"])
    category_ids = {name: i + 1 for i, name in enumerate(classes.names)}
    root = image_root(labelled)
    images, annotations = [], []
    for image_id, key in enumerate(labelled, 1):
        row = chosen[key]
        name = os.path.relpath(key, root) if root else key
        images.append(
            {"id": image_id, "file_name": name, "width": row["width"], "height": row["height"]}
        )
        for record in json.loads(row["detections"]):
            if record["category"] not in category_ids:
                raise ValueError(
                    f"shard row of {key} has category '{record['category']}', which is not in "
                    f"the vocabulary {classes.names}"
                )
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_ids[record["category"]],
                "bbox": record["bbox"],
                "area": record["area"],
                "iscrowd": 0,
                "score": record["score"],
            }
            if "segmentation" in record:
                annotation["segmentation"] = record["segmentation"]
            annotations.append(annotation)
    dataset = {
        "info": {"description": "labelled by ovvision tools/autolabel.py", "image_root": root},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in category_ids.items()],
    }
    return dataset, skipped


def merge_shards(shard_dir: str, output_dir: str, classes: ClassList) -> dict[str, Any]:
    """Merge the shards of ``shard_dir`` into ``output_dir``: :data:`ANNOTATIONS_FILE` (COCO),
    :data:`CLASSES_FILE` (the vocabulary, one ``name|synonym`` per line) and
    :data:`SKIPPED_FILE` (``key<TAB>reason`` per skipped image), each written atomically.

    Returns:
        Counts: ``images``, ``annotations``, ``skipped``, and ``image_root``.
    """
    dataset, skipped = to_coco(read_shards(shard_dir), classes)
    write_json_atomic(os.path.join(output_dir, ANNOTATIONS_FILE), dataset)
    lines = ["|".join([n, *s]) + "\n" for n, s in zip(classes.names, classes.synonyms)]
    _write_text(os.path.join(output_dir, CLASSES_FILE), "".join(lines))
    reasons = "".join(f"{key}\t{' '.join(reason.split())}\n" for key, reason in skipped)
    _write_text(os.path.join(output_dir, SKIPPED_FILE), reasons)
    return {
        "images": len(dataset["images"]),
        "annotations": len(dataset["annotations"]),
        "skipped": len(skipped),
        "image_root": dataset["info"]["image_root"],
    }


def _write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
