"""COCO-format detection results: conversion from Instances, caps, ordering, and atomic files.

A COCO result is one dict per detection: ``{"image_id": int, "category_id": int (the dataset's
id), "bbox": [x, y, w, h] (absolute pixels), "score": float}`` plus, for instance segmentation,
``"segmentation": {"size": [h, w], "counts": str}`` (compressed RLE).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pycocotools.mask as mask_util
import torch

from ovvision.structures import Boxes, Instances
from ovvision.utils.file_io import atomic_write

COCOResult = dict[str, Any]
EVAL_RESULTS_FILE = "eval_results.json"


def output_instances(output: Any, image_id: int) -> Instances:
    """The Instances of one model output: either the Instances itself or ``{"instances": ...}``."""
    if isinstance(output, Instances):
        return output
    if isinstance(output, Mapping) and isinstance(output.get("instances"), Instances):
        return output["instances"]
    raise TypeError(
        f"Output for image_id {image_id} must be Instances or a dict with key 'instances' holding "
        f"Instances; got {type(output).__name__}"
    )


def instances_to_coco_results(
    instances: Instances,
    image_id: int,
    contiguous_to_dataset_id: Mapping[int, int],
    max_dets: int | None = None,
    image_size: tuple[int, int] | None = None,
) -> tuple[list[COCOResult], int]:
    """Convert one image's predictions to COCO results, keeping its ``max_dets`` best.

    Args:
        instances: ``pred_boxes`` (Boxes, XYXY absolute, original image coordinates), ``scores``
            (Tensor[N]), ``pred_classes`` (Tensor[N], contiguous ids) and optionally
            ``pred_masks`` (Tensor[N, H, W], bool or float in [0, 1] thresholded at 0.5, at the
            original image size).
        image_id: the dataset's id of the image.
        contiguous_to_dataset_id: contiguous class id -> the dataset's category id.
        max_dets: keep at most this many detections (highest scores; ties keep the earlier
            one); None keeps all.
        image_size: ``(height, width)`` of the original image, which masks must have
            (default: ``instances.image_size``).

    Returns:
        The results (``segmentation`` present iff ``pred_masks`` is), and how many detections the
        cap removed.

    Raises:
        TypeError/ValueError: naming the image, for a missing or malformed field, a non-finite
            score or box, or a predicted class the dataset lacks.
    """
    if not instances.get_fields():  # an Instances with no fields: no detections
        return [], 0
    for field in ("pred_boxes", "scores", "pred_classes"):
        if not instances.has(field):
            raise ValueError(f"Predictions for image_id {image_id} have no field '{field}'")
    if not isinstance(instances.pred_boxes, Boxes):
        raise TypeError(
            f"pred_boxes of image_id {image_id} must be Boxes, got "
            f"{type(instances.pred_boxes).__name__}"
        )
    boxes = instances.pred_boxes.tensor.detach().to("cpu", torch.float64)
    scores = instances.scores.detach().to("cpu", torch.float64)
    classes = instances.pred_classes.detach().to("cpu").tolist()
    if not (torch.isfinite(boxes).all() and torch.isfinite(scores).all()):
        raise ValueError(f"Predictions for image_id {image_id} contain non-finite boxes or scores")

    order = torch.sort(scores, descending=True, stable=True).indices
    keep = order if max_dets is None else order[:max_dets]
    keep = keep.tolist()
    boxes[:, 2:] -= boxes[:, :2]  # XYXY -> XYWH
    results = []
    for i in keep:
        cls = int(classes[i])
        if cls not in contiguous_to_dataset_id:
            raise ValueError(
                f"Image_id {image_id} has a prediction of class {cls}, which the dataset lacks "
                f"(it has {len(contiguous_to_dataset_id)} classes with contiguous ids "
                f"{min(contiguous_to_dataset_id, default=None)}..."
                f"{max(contiguous_to_dataset_id, default=None)})"
            )
        results.append(
            {
                "image_id": int(image_id),
                "category_id": int(contiguous_to_dataset_id[cls]),
                "bbox": [float(v) for v in boxes[i].tolist()],
                "score": float(scores[i]),
            }
        )
    if instances.has("pred_masks"):
        size = image_size if image_size is not None else instances.image_size
        for result, rle in zip(results, _encode_masks(instances.pred_masks, keep, size, image_id)):
            result["segmentation"] = rle
    return results, len(order) - len(keep)


def _encode_masks(
    masks: torch.Tensor, keep: list[int], image_size: tuple[int, int], image_id: int
) -> list[dict[str, Any]]:
    """Compressed RLEs (``counts`` as str) of ``masks[keep]``; masks are Tensor[N, H, W]."""
    height, width = int(image_size[0]), int(image_size[1])
    if masks.dim() != 3 or tuple(masks.shape[1:]) != (height, width):
        raise ValueError(
            f"pred_masks of image_id {image_id} must be Tensor[N, {height}, {width}] (the original "
            f"image size), got shape {tuple(masks.shape)}"
        )
    masks = masks[keep].detach().cpu()
    binary = (masks if masks.dtype == torch.bool else masks >= 0.5).numpy().view(np.uint8)
    rles = [mask_util.encode(np.asfortranarray(mask)) for mask in binary]
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def top_results(results: list[COCOResult], max_dets: int) -> list[COCOResult]:
    """The ``max_dets`` highest-scoring results (ties keep the earlier one), in score order."""
    return sorted(results, key=lambda r: -r["score"])[:max_dets]


def cap_detections_per_image(
    results: list[COCOResult], max_dets: int | None
) -> tuple[list[COCOResult], int]:
    """Keep each image's ``max_dets`` best detections (None: keep all); returns (kept, removed)."""
    if max_dets is None:
        return results, 0
    return _cap_per_group(results, "image_id", max_dets)


def cap_detections_per_class(
    results: list[COCOResult], max_dets: int
) -> tuple[list[COCOResult], int]:
    """Keep each category's ``max_dets`` best detections over the whole dataset (LVIS fixed AP)."""
    return _cap_per_group(results, "category_id", max_dets)


def _cap_per_group(
    results: list[COCOResult], key: str, max_dets: int
) -> tuple[list[COCOResult], int]:
    groups: dict[int, list[COCOResult]] = defaultdict(list)
    for result in results:
        groups[result[key]].append(result)
    kept = [r for group in groups.values() for r in top_results(group, max_dets)]
    return kept, len(results) - len(kept)


def sort_results(results: list[COCOResult]) -> list[COCOResult]:
    """A total, content-based order (image, score descending, category, box, mask), so results
    gathered from any number of processes in any order serialise to the same bytes."""

    def key(r: COCOResult) -> tuple:
        seg = r.get("segmentation")
        return (
            r["image_id"],
            -r["score"],
            r["category_id"],
            r["bbox"],
            seg["counts"] if seg else "",
        )

    return sorted(results, key=key)


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as JSON (keys sorted) so that a reader never sees a half-written file."""
    text = json.dumps(obj, sort_keys=True, indent=indent, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    return obj


def write_metrics_json(results: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write metrics (``{"bbox": {...}, "segm": {...}}``) atomically to ``path`` as indented
    JSON; undefined metrics (NaN) become ``null``."""
    write_json_atomic(path, _nan_to_none(results), indent=2)


def save_eval_results(results: Mapping[str, Any], output_dir: str | os.PathLike) -> str:
    """Write final metrics atomically to ``output_dir/eval_results.json``; returns the path.

    Args:
        results: ``{"bbox": {"AP": ..., "AP50-novel": ..., ...}, "segm": {...}}`` as returned by
            the evaluators (percent scale); undefined metrics (NaN) are written as ``null``.
    """
    path = os.path.join(os.fspath(output_dir), EVAL_RESULTS_FILE)
    write_metrics_json(results, path)
    return path
