"""One model labelling images: a callable class, so Ray Data keeps one model per actor."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ovvision.config import CfgNode
from ovvision.data import ImageReadError
from ovvision.structures import ClassList, Instances

from .inputs import load_image

logger = logging.getLogger(__name__)

__all__ = ["LabelSettings", "Labeller", "cap_detections", "detection_records", "skipped_row"]


@dataclass(frozen=True)
class LabelSettings:
    """What a labelling job runs: the model, the vocabulary and which detections become labels.

    Attributes:
        config: the detector's config, paths absolute (a Ray worker may start in another folder).
        weights: the detector's checkpoint.
        classes: the vocabulary (names, synonyms); categories of the output, in this order.
        score_threshold: detections scoring lower are dropped.
        max_per_class: per image, keep at most this many detections of each class (0 = all).
        max_per_image: per image, keep at most this many detections (0 = all).
        num_threads: torch threads of each labelling process (0 = torch's default).
    """

    config: CfgNode
    weights: str
    classes: ClassList
    score_threshold: float = 0.5
    max_per_class: int = 0
    max_per_image: int = 0
    num_threads: int = 0

    def fingerprint(self) -> dict[str, Any]:
        """The settings a re-run must share to add to an output folder (JSON-ready)."""
        return {
            "weights": self.weights,
            "classes": [[n, *s] for n, s in zip(self.classes.names, self.classes.synonyms)],
            "score_threshold": self.score_threshold,
            "max_per_class": self.max_per_class,
            "max_per_image": self.max_per_image,
        }


def cap_detections(
    instances: Instances, score_threshold: float, max_per_class: int, max_per_image: int
) -> Instances:
    """The detections kept as labels: score at least ``score_threshold``, each class's
    ``max_per_class`` best, then the ``max_per_image`` best (0 = no cap), best first."""
    scores = instances.scores
    order = torch.sort(scores, descending=True, stable=True).indices
    order = order[scores[order] >= score_threshold]
    if max_per_class > 0:
        classes = instances.pred_classes[order].tolist()
        seen: dict[int, int] = {}
        keep = []
        for i, c in zip(order.tolist(), classes):
            seen[c] = seen.get(c, 0) + 1
            if seen[c] <= max_per_class:
                keep.append(i)
        order = torch.tensor(keep, dtype=torch.long)
    if max_per_image > 0:
        order = order[:max_per_image]
    return instances[order]


def detection_records(instances: Instances, class_names: list[str]) -> list[dict[str, Any]]:
    """One image's detections as label records, in the order of ``instances``.

    Returns:
        ``{"category": name, "bbox": [x, y, w, h] (absolute pixels), "score": float,
        "area": float}`` plus ``"segmentation"`` (COCO compressed RLE, ``counts`` as str) where
        the model segments; ``area`` is the mask's pixel count, else the box's area.
    """
    import pycocotools.mask as mask_util

    from ovvision.evaluation.coco_results import instances_to_coco_results

    identity = {i: i for i in range(len(class_names))}
    results, _ = instances_to_coco_results(instances, 0, identity)
    order = torch.sort(instances.scores, descending=True, stable=True).indices.tolist()
    if order != list(range(len(instances))):
        raise ValueError("detection_records needs instances sorted by score, best first")
    records = []
    for result in results:
        record = {
            "category": class_names[result["category_id"]],
            "bbox": result["bbox"],
            "score": result["score"],
        }
        if "segmentation" in result:
            record["segmentation"] = result["segmentation"]
            record["area"] = float(mask_util.area(result["segmentation"]))
        else:
            record["area"] = float(result["bbox"][2] * result["bbox"][3])
        records.append(record)
    return records


class Labeller:
    """Loads the detector once; labels images one at a time.

    Each image runs alone through the model, so its labels do not depend on which images share
    a batch: a resumed or distributed run labels every image as a single process would.

    As a Ray Data ``map_batches`` class it takes a batch with columns ``key`` (str), ``image``
    (RGB uint8 ``[H, W, 3]``, empty when unreadable) and ``error`` (str) and returns the shard
    columns (:data:`~ovvision.autolabel.shards.COLUMNS`).
    """

    def __init__(self, settings: LabelSettings):
        from ovvision.engine.predictor import Predictor

        if settings.num_threads > 0:
            torch.set_num_threads(settings.num_threads)
        self.settings = settings
        self.predictor = Predictor(settings.config, settings.weights)
        self.predictor.set_vocabulary(settings.classes)
        self.class_names = self.predictor.class_names

    def label(self, key: str, image: np.ndarray) -> dict[str, Any]:
        """The shard row of one decoded image; a model failure becomes the row's ``error``."""
        height, width = int(image.shape[0]), int(image.shape[1])
        s = self.settings
        try:
            instances = self.predictor(image)
            kept = cap_detections(instances, s.score_threshold, s.max_per_class, s.max_per_image)
            records = detection_records(kept, self.class_names)
        except (RuntimeError, ValueError) as e:
            logger.error("Skipping %s: the model failed: %s", key, e)
            return skipped_row(key, f"model failed: {e}")
        return {
            "key": key,
            "width": width,
            "height": height,
            "detections": json.dumps(records),
            "error": "",
        }

    def label_key(self, key: str) -> dict[str, Any]:
        """The shard row of one image key, read here (unreadable images become skipped rows)."""
        try:
            image = load_image(key, self.predictor.max_image_pixels)
        except ImageReadError as e:
            logger.error("Skipping %s: %s", key, e)
            return skipped_row(key, str(e))
        return self.label(key, image)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows = []
        for key, image, error in zip(batch["key"], batch["image"], batch["error"]):
            key = str(key)
            rows.append(skipped_row(key, str(error)) if error else self.label(key, image))
        return {column: [row[column] for row in rows] for column in rows[0]} if rows else {}


def skipped_row(key: str, reason: str) -> dict[str, Any]:
    """The shard row of an image that could not be labelled."""
    return {"key": key, "width": 0, "height": 0, "detections": "[]", "error": reason}
