"""Small COCO/LVIS-format ground truths and predictions made by the tests themselves."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pycocotools.mask as mask_util
import torch

from ovvision.structures import Boxes, Instances

NON_CONTIGUOUS_IDS = (1, 3, 7, 90)


def rle_of_box(box_xywh: list[float], height: int, width: int) -> dict[str, Any]:
    """Compressed RLE (counts as str) of the pixels inside an XYWH box."""
    mask = np.zeros((height, width), dtype=np.uint8, order="F")
    x, y, w, h = (int(round(v)) for v in box_xywh)
    mask[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = 1
    rle = mask_util.encode(mask)
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _octagon(x: float, y: float, w: float, h: float) -> list[float]:
    """A polygon inside the box with its corners cut, so that the mask differs from the box."""
    cx, cy = 0.25 * w, 0.25 * h
    points = [
        (x + cx, y),
        (x + w - cx, y),
        (x + w, y + cy),
        (x + w, y + h - cy),
        (x + w - cx, y + h),
        (x + cx, y + h),
        (x, y + h - cy),
        (x, y + cy),
    ]
    return [float(v) for p in points for v in p]


def make_coco_gt(
    seed: int,
    cat_ids: tuple[int, ...] = NON_CONTIGUOUS_IDS,
    num_images: int = 8,
    crowd_prob: float = 0.1,
    max_per_image: int = 5,
    splits: dict[int, str] | None = None,
) -> dict[str, Any]:
    """A COCO instances dict with polygon masks, some crowd RLE regions, sizes in every area
    range, and image ids that are not 0..N-1."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(num_images):
        height, width = int(rng.integers(80, 240)), int(rng.integers(80, 240))
        image_id = 1000 + 7 * i
        images.append({"id": image_id, "height": height, "width": width, "file_name": f"{i}.png"})
        for _ in range(int(rng.integers(0, max_per_image + 1))):
            w = float(rng.uniform(6, width * 0.8))
            h = float(rng.uniform(6, height * 0.8))
            x = float(rng.uniform(0, width - w))
            y = float(rng.uniform(0, height - h))
            crowd = bool(rng.random() < crowd_prob)
            if crowd:
                segmentation: Any = rle_of_box([x, y, w, h], height, width)
                rle = segmentation
            else:
                segmentation = [_octagon(x, y, w, h)]
                rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.choice(cat_ids)),
                    "bbox": [float(v) for v in mask_util.toBbox(rle)],
                    "area": float(mask_util.area(rle)),
                    "segmentation": segmentation,
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": c, "name": f"class_{c}"} for c in cat_ids]
    for category in categories:
        if splits is not None:
            category["split"] = splits[category["id"]]
    return {"images": images, "annotations": anns, "categories": categories}


def make_predictions(
    gt: dict[str, Any], seed: int, fp_per_image: int = 3, miss_prob: float = 0.2
) -> list[dict[str, Any]]:
    """COCO results: jittered copies of most ground truths (sometimes with a wrong class) and
    random false positives, each with a box and a rectangular RLE mask."""
    rng = np.random.default_rng(seed)
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    cat_ids = [c["id"] for c in gt["categories"]]
    results = []

    def add(image_id: int, cat_id: int, box: list[float]) -> None:
        height, width = sizes[image_id]
        x, y, w, h = box
        x, y = min(max(x, 0.0), width - 2.0), min(max(y, 0.0), height - 2.0)
        w, h = min(max(w, 2.0), width - x), min(max(h, 2.0), height - y)
        results.append(
            {
                "image_id": image_id,
                "category_id": int(cat_id),
                "bbox": [x, y, w, h],
                "score": float(np.round(rng.uniform(0.05, 1.0), 3)),
                "segmentation": rle_of_box([x, y, w, h], height, width),
            }
        )

    for ann in gt["annotations"]:
        if rng.random() < miss_prob:
            continue
        x, y, w, h = ann["bbox"]
        jitter = rng.uniform(-0.15, 0.15, size=4) * np.array([w, h, w, h])
        cat = ann["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
        add(ann["image_id"], cat, list(np.array([x, y, w, h]) + jitter))
    for image_id, (height, width) in sizes.items():
        for _ in range(int(rng.integers(0, fp_per_image + 1))):
            w, h = float(rng.uniform(4, width / 2)), float(rng.uniform(4, height / 2))
            box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h]
            add(image_id, int(rng.choice(cat_ids)), box)
    return results


def make_lvis_gt(seed: int, num_images: int = 10) -> dict[str, Any]:
    """An LVIS-format dict: categories with r/c/f frequencies and non-contiguous ids, images with
    verified-negative and not-exhaustive category lists, and no crowd annotations."""
    frequencies = {2: "r", 5: "r", 11: "c", 12: "c", 40: "f", 41: "f"}
    gt = make_coco_gt(seed, cat_ids=tuple(frequencies), num_images=num_images, crowd_prob=0.0)
    rng = np.random.default_rng(seed + 1)
    for ann in gt["annotations"]:
        del ann["iscrowd"]
    positives: dict[int, set[int]] = {img["id"]: set() for img in gt["images"]}
    for ann in gt["annotations"]:
        positives[ann["image_id"]].add(ann["category_id"])
    for image in gt["images"]:
        absent = [c for c in frequencies if c not in positives[image["id"]]]
        image["neg_category_ids"] = sorted(int(c) for c in absent if rng.random() < 0.5)
        image["not_exhaustive_category_ids"] = sorted(
            int(c) for c in positives[image["id"]] if rng.random() < 0.4
        )
    for category in gt["categories"]:
        category["frequency"] = frequencies[category["id"]]
    return gt


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def write_json(path: str | os.PathLike, obj: Any) -> str:
    with open(path, "w") as f:
        json.dump(obj, f)
    return os.fspath(path)


def results_to_outputs(
    gt: dict[str, Any], results: list[dict[str, Any]], with_masks: bool = True
) -> dict[int, dict[str, Instances]]:
    """Model outputs (``{"instances": Instances}`` per image id, contiguous classes in the order
    of increasing category id) that convert back to ``results``."""
    to_contiguous = {c: i for i, c in enumerate(sorted(c["id"] for c in gt["categories"]))}
    outputs = {}
    for image in gt["images"]:
        height, width = image["height"], image["width"]
        mine = [r for r in results if r["image_id"] == image["id"]]
        boxes = torch.tensor([r["bbox"] for r in mine], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        fields: dict[str, Any] = {
            "pred_boxes": Boxes(boxes),
            "scores": torch.tensor([r["score"] for r in mine], dtype=torch.float32),
            "pred_classes": torch.tensor(
                [to_contiguous[r["category_id"]] for r in mine], dtype=torch.int64
            ),
        }
        if with_masks:
            masks = [mask_util.decode(r["segmentation"]) for r in mine]
            fields["pred_masks"] = torch.from_numpy(
                np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
            ).bool()
        outputs[image["id"]] = {"instances": Instances((height, width), **fields)}
    return outputs


def inputs_of(gt: dict[str, Any]) -> list[dict[str, Any]]:
    """Mapper-like input dicts (no pixels: evaluators only read ids and sizes)."""
    return [
        {"image_id": img["id"], "height": img["height"], "width": img["width"]}
        for img in gt["images"]
    ]


def run_evaluator(evaluator, gt, outputs, batch_size=3, order=None):
    """Feed every image once, in ``order`` (default: as listed), and evaluate."""
    inputs = inputs_of(gt)
    if order is not None:
        inputs = [inputs[i] for i in order]
    evaluator.reset()
    for i in range(0, len(inputs), batch_size):
        batch = inputs[i : i + batch_size]
        evaluator.process(batch, [outputs[d["image_id"]] for d in batch])
    return evaluator.evaluate()
