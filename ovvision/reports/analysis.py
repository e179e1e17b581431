"""Numbers behind an evaluation report: precision-recall curves, confusions, missed objects.

The curves are read from the evaluator's accumulated ``precision`` array; confusions and missed
objects match detections to ground truth per image (greedy by score, as COCO does) at one IoU.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ovvision.evaluation.box_iou import iou_xywh
from ovvision.evaluation.snapshot import TaskEvaluation


def pr_curve(
    task: TaskEvaluation, cat_ids: Iterable[int], iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray] | None:
    """The precision-recall curve at ``iou``, averaged over the given categories.

    Uses area "all" and the largest maxDets, as AP does; categories without ground truth (-1)
    are left out.

    Returns:
        ``(recall ndarray[R], precision ndarray[R])``, or None when no given category has
        ground truth.
    """
    t = int(np.flatnonzero(np.isclose(task.iou_thresholds, iou))[0])
    wanted = set(cat_ids)
    columns = [k for k, c in enumerate(task.cat_ids) if c in wanted]
    curves = [task.precision[t, :, k, 0, -1] for k in columns]
    curves = [c for c in curves if (c > -1).all()]
    if not curves:
        return None
    return task.recall_thresholds.copy(), np.mean(curves, axis=0)


class ImageMatches:
    """Detections and ground truth of one image, matched per class at one IoU.

    Attributes:
        gt: the image's non-crowd ground-truth annotations.
        detections: its results with ``score >= min_score``, best first.
        gt_matched: per gt, whether a detection of its class matched it.
        det_matched: per detection, whether it matched a gt of its class.
        det_best_other: per detection, the index into ``gt`` of the best-overlapping gt of
            another class if that IoU reaches the threshold, else -1.
    """

    def __init__(
        self,
        gt: Sequence[Mapping[str, Any]],
        detections: Sequence[Mapping[str, Any]],
        iou_threshold: float,
    ):
        self.gt = list(gt)
        self.detections = sorted(detections, key=lambda d: -float(d["score"]))
        gt_boxes = np.array([g["bbox"] for g in self.gt], dtype=np.float64).reshape(-1, 4)
        dt_boxes = np.array([d["bbox"] for d in self.detections], dtype=np.float64).reshape(-1, 4)
        ious = iou_xywh(dt_boxes, gt_boxes)
        gt_cls = np.array([g["category_id"] for g in self.gt], dtype=np.int64)
        self.gt_matched = [False] * len(self.gt)
        self.det_matched = [False] * len(self.detections)
        self.det_best_other = [-1] * len(self.detections)
        for i, det in enumerate(self.detections):
            same = gt_cls == int(det["category_id"])
            free = same & ~np.array(self.gt_matched, dtype=bool)
            if free.any():
                j = int(np.argmax(np.where(free, ious[i], -1.0)))
                if ious[i, j] >= iou_threshold:
                    self.gt_matched[j] = True
                    self.det_matched[i] = True
                    continue
            if (~same).any():
                j = int(np.argmax(np.where(~same, ious[i], -1.0)))
                if ious[i, j] >= iou_threshold:
                    self.det_best_other[i] = j


def match_images(
    gt_dataset: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    image_ids: Iterable[int] | None = None,
    iou_threshold: float = 0.5,
    min_score: float = 0.3,
) -> dict[int, ImageMatches]:
    """Match each image's detections (``score >= min_score``) to its ground truth.

    Args:
        gt_dataset: a COCO-format dict (``images``, ``annotations``).
        results: COCO results (``bbox`` XYWH, ``score``, ``category_id``, ``image_id``).
        image_ids: images to match (default: every image of ``gt_dataset``).
        iou_threshold: box IoU for a match.
        min_score: detections below it are not shown to a reader, so they neither find an
            object nor count as a confusion.
    """
    ids = sorted(image_ids) if image_ids is not None else [i["id"] for i in gt_dataset["images"]]
    gts: dict[int, list] = defaultdict(list)
    for ann in gt_dataset.get("annotations", []):
        if not ann.get("iscrowd", 0):
            gts[int(ann["image_id"])].append(ann)
    dets: dict[int, list] = defaultdict(list)
    for r in results:
        if float(r["score"]) >= min_score:
            dets[int(r["image_id"])].append(r)
    return {i: ImageMatches(gts[i], dets[i], iou_threshold) for i in ids}


def count_confusions(matches: Mapping[int, ImageMatches]) -> Counter[tuple[int, int]]:
    """``(detected class, true class)`` -> how many detections of the first class, matching no
    object of their own class, overlap an object of the second class at the IoU threshold."""
    counts: Counter[tuple[int, int]] = Counter()
    for m in matches.values():
        for det, other in zip(m.detections, m.det_best_other):
            if other >= 0:
                counts[(int(det["category_id"]), int(m.gt[other]["category_id"]))] += 1
    return counts


def missed_objects(
    matches: Mapping[int, ImageMatches], cat_ids: Iterable[int]
) -> dict[int, list[Mapping[str, Any]]]:
    """Per image, its ground-truth objects of ``cat_ids`` that no detection of their class
    found; images without such misses are left out."""
    wanted = set(cat_ids)
    missed = {}
    for image_id, m in matches.items():
        lost = [g for g, hit in zip(m.gt, m.gt_matched) if not hit and g["category_id"] in wanted]
        if lost:
            missed[image_id] = lost
    return missed
