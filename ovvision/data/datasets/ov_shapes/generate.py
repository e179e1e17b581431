"""Writing the OV-Shapes benchmark: images, instances, captions, referring expressions, pairs.

Every image is drawn from its own random generator seeded by ``(seed, split, index)``, so the
output does not depend on the number of worker processes or their scheduling, and the same seed
gives byte-identical files (PNG files carry no metadata; json is written in a fixed order with
integers only).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util
from tqdm import tqdm

from ..json_io import write_json
from .scene import SceneObject, render_scene
from .shapes import DEFAULT_NOVEL_CLASSES, SHAPE_CLASSES
from .text import make_captions, make_expression, object_caption

__all__ = ["generate_ov_shapes"]

_SPLIT_CODES = {"train": 1, "val": 2}
# Image ids are unique across splits: train 1..N, val 1_000_001..; annotation, caption, ref and
# pair ids derive from the image id.
_ID_OFFSETS = {"train": 0, "val": 1_000_000}
_MAX_IMAGES = 999_999
_MAX_OBJECTS = 20
# Objects at least this visible get an object-crop pretraining pair.
PAIR_MIN_VISIBLE_FRACTION = 0.85
PNG_COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class _SplitJob:
    output: str
    split: str
    seed: int
    image_size: int
    max_objects: int


def generate_ov_shapes(
    output: str,
    seed: int = 0,
    num_train: int = 4000,
    num_val: int = 500,
    image_size: int = 128,
    max_objects: int = 8,
    novel_classes: Sequence[str] = DEFAULT_NOVEL_CLASSES,
    workers: int | None = None,
    progress: bool = True,
) -> list[str]:
    """Write the benchmark under ``output`` (see ``datasets/README.md`` for every file).

    Args:
        output: destination folder; its ``train/`` and ``val/`` PNG files are replaced.
        seed: the only source of randomness.
        num_train: training images.
        num_val: validation images.
        image_size: side of the square images (object sizes scale with it).
        max_objects: each scene has 1 to this many objects.
        novel_classes: class names held out of ``instances_train_base.json``.
        workers: processes drawing images (default: up to 2); the output does not depend on it.
        progress: show a progress bar.

    Returns:
        The paths of the json files written.
    """
    _check_arguments(num_train, num_val, image_size, max_objects, novel_classes)
    novel = set(novel_classes)
    categories = [
        {
            "id": i + 1,
            "name": name,
            "supercategory": "shape",
            "split": "novel" if name in novel else "base",
        }
        for i, name in enumerate(SHAPE_CLASSES)
    ]
    info = {
        "description": "OV-Shapes, the synthetic open-vocabulary benchmark of ovvision",
        "version": "1.0",
        "seed": seed,
        "image_size": image_size,
        "max_objects": max_objects,
        "novel_classes": sorted(novel),
    }
    written = []
    workers = workers or min(2, os.cpu_count() or 1)
    for split, count in (("train", num_train), ("val", num_val)):
        job = _SplitJob(output, split, seed, image_size, max_objects)
        results = _draw_split(job, count, workers, progress)
        written += _write_split(output, split, results, categories, {**info, "split": split})
    return written


def _check_arguments(
    num_train: int, num_val: int, image_size: int, max_objects: int, novel: Sequence[str]
) -> None:
    for name, value in (("num_train", num_train), ("num_val", num_val)):
        if not 1 <= value <= _MAX_IMAGES:
            raise ValueError(f"{name} must be in [1, {_MAX_IMAGES}], got {value}")
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 pixels, got {image_size}")
    if not 1 <= max_objects <= _MAX_OBJECTS:
        raise ValueError(f"max_objects must be in [1, {_MAX_OBJECTS}], got {max_objects}")
    unknown = sorted(set(novel) - set(SHAPE_CLASSES))
    if unknown:
        raise ValueError(f"novel classes {unknown} are not OV-Shapes classes {list(SHAPE_CLASSES)}")
    if not novel or len(set(novel)) == len(SHAPE_CLASSES):
        raise ValueError("novel classes must be a non-empty, proper subset of the classes")


def _draw_split(job: _SplitJob, count: int, workers: int, progress: bool) -> list[dict]:
    folder = os.path.join(job.output, job.split)
    os.makedirs(folder, exist_ok=True)
    for name in sorted(os.listdir(folder)):
        if name.endswith(".png"):
            os.remove(os.path.join(folder, name))
    draw = functools.partial(_draw_image, job)
    bar = functools.partial(tqdm, total=count, desc=f"OV-Shapes {job.split}", disable=not progress)
    if workers <= 1:
        return list(bar(map(draw, range(count))))
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        return list(bar(pool.imap(draw, range(count), chunksize=16)))


def _draw_image(job: _SplitJob, index: int) -> dict[str, Any]:
    """Render, save and describe image ``index`` of a split (runs in a worker process)."""
    rng = np.random.default_rng([job.seed, _SPLIT_CODES[job.split], index])
    first_class = SHAPE_CLASSES[index % len(SHAPE_CLASSES)]
    pixels, objects, background = render_scene(
        rng, SHAPE_CLASSES, first_class, job.image_size, job.max_objects
    )
    image_id = _ID_OFFSETS[job.split] + index + 1
    file_name = f"{index:06d}.png"
    Image.fromarray(pixels).save(
        os.path.join(job.output, job.split, file_name), compress_level=PNG_COMPRESS_LEVEL
    )
    annotations = [_annotation(obj, image_id, k) for k, obj in enumerate(objects)]
    captions = make_captions(rng, objects, background, job.image_size)
    refs = []
    for k, ann in enumerate(annotations):
        text = make_expression(rng, objects, k, job.image_size)
        if text is not None:
            refs.append({"ann": ann, "expression": text})
    return {
        "image": {
            "id": image_id,
            "file_name": file_name,
            "height": job.image_size,
            "width": job.image_size,
        },
        "annotations": annotations,
        "captions": captions,
        "refs": refs,
        "pairs": _pairs(rng, objects, annotations, captions, job.image_size),
    }


def _annotation(obj: SceneObject, image_id: int, k: int) -> dict[str, Any]:
    rle = mask_util.encode(np.asfortranarray(obj.mask.astype(np.uint8)))
    return {
        "id": image_id * 100 + k,
        "image_id": image_id,
        "category_id": SHAPE_CLASSES.index(obj.category) + 1,
        "bbox": list(obj.box()),
        "area": int(np.count_nonzero(obj.mask)),
        "iscrowd": 0,
        "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
        "attributes": {"color": obj.color, "size": obj.size},
    }


def _pairs(
    rng: np.random.Generator,
    objects: Sequence[SceneObject],
    annotations: Sequence[dict[str, Any]],
    captions: Sequence[str],
    image_size: int,
) -> list[dict[str, Any]]:
    """Object-crop pairs of the well-visible objects, then one whole-scene pair per caption."""
    pairs = []
    for obj, ann in zip(objects, annotations):
        if ann["area"] >= PAIR_MIN_VISIBLE_FRACTION * obj.full_area:
            pairs.append(
                {
                    "kind": "object",
                    "crop_box": _crop_box(ann["bbox"], image_size),
                    "caption": object_caption(rng, obj),
                    "category_id": ann["category_id"],
                    "ann_id": ann["id"],
                }
            )
    for caption in captions:
        pairs.append(
            {
                "kind": "scene",
                "crop_box": None,
                "caption": caption,
                "category_id": None,
                "ann_id": None,
            }
        )
    return pairs


def _crop_box(bbox: Sequence[int], image_size: int) -> list[int]:
    """A square ``[x, y, w, h]`` around a box with a margin of context, inside the image."""
    x, y, w, h = bbox
    side = min(image_size, int(round(max(w, h) * 1.3)) + 4)
    x0 = min(max(int(round(x + w / 2 - side / 2)), 0), image_size - side)
    y0 = min(max(int(round(y + h / 2 - side / 2)), 0), image_size - side)
    return [x0, y0, side, side]


def _write_split(
    output: str,
    split: str,
    results: list[dict[str, Any]],
    categories: list[dict[str, Any]],
    info: dict[str, Any],
) -> list[str]:
    folder = os.path.join(output, "annotations")
    os.makedirs(folder, exist_ok=True)
    images = [r["image"] for r in results]
    annotations = [a for r in results for a in r["annotations"]]
    instances = {"info": info, "images": images, "categories": categories}
    full = {**instances, "annotations": annotations}
    if split == "train":
        base_ids = {c["id"] for c in categories if c["split"] == "base"}
        files = {
            "instances_train_all.json": full,
            "instances_train_base.json": {
                **instances,
                "categories": [c for c in categories if c["id"] in base_ids],
                "novel_categories": [c for c in categories if c["id"] not in base_ids],
                "annotations": [a for a in annotations if a["category_id"] in base_ids],
            },
        }
    else:
        files = {"instances_val.json": full}
    files[f"captions_{split}.json"] = {
        "info": info,
        "images": images,
        "annotations": [
            {"id": r["image"]["id"] * 10 + k, "image_id": r["image"]["id"], "caption": c}
            for r in results
            for k, c in enumerate(r["captions"])
        ],
    }
    files[f"refexp_{split}.json"] = {
        **instances,
        "annotations": annotations,
        "refs": [_ref(ref) for r in results for ref in r["refs"]],
    }
    files[f"pretrain_pairs_{split}.json"] = {
        "info": info,
        "categories": categories,
        "images": images,
        "pairs": [
            {"id": r["image"]["id"] * 100 + k, "image_id": r["image"]["id"], **pair}
            for r in results
            for k, pair in enumerate(r["pairs"])
        ],
    }
    paths = []
    for name, content in files.items():
        paths.append(os.path.join(folder, name))
        write_json(paths[-1], content)
    return paths


def _ref(ref: dict[str, Any]) -> dict[str, Any]:
    ann = ref["ann"]
    return {
        "id": ann["id"],
        "image_id": ann["image_id"],
        "ann_id": ann["id"],
        "category_id": ann["category_id"],
        "bbox": ann["bbox"],
        "expression": ref["expression"],
    }
