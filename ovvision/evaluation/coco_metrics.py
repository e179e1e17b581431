"""COCO-style AP with faster-coco-eval (C++; numbers equal pycocotools'), and summaries of it.

All metric functions take the ``precision`` array of an accumulated evaluation,
``Tensor[T, R, K, A, M]``-shaped (IoU thresholds x 101 recall thresholds x categories x area
ranges (all, small, medium, large) x maxDets), where -1 marks "no ground truth", and return
percentages (0-100); a metric without any ground truth to measure is NaN.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster

from .coco_results import COCOResult

logger = logging.getLogger(__name__)

AREA_NAMES = ("all", "small", "medium", "large")
IOU_TYPES = ("bbox", "segm")


def load_coco_gt(json_file: str | os.PathLike) -> COCO:
    """Load a COCO-format ground-truth json (COCO, LVIS, OV-Shapes) with faster-coco-eval."""
    json_file = os.fspath(json_file)
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"Ground-truth json '{json_file}' does not exist")
    gt = COCO(json_file)
    gt.print_function = logger.debug
    for key in ("images", "annotations", "categories"):
        if key not in gt.dataset:
            raise ValueError(f"Ground-truth json '{json_file}' has no '{key}' list")
    return gt


def run_coco_eval(
    coco_gt: COCO,
    results: list[COCOResult],
    iou_type: str,
    max_dets: Sequence[int],
    img_ids: Iterable[int] | None = None,
    lvis_style: bool = False,
) -> COCOeval_faster:
    """Evaluate COCO results against ground truth; returns the accumulated evaluation.

    Args:
        coco_gt: the ground truth.
        results: COCO results (not modified); ``[]`` is allowed.
        iou_type: "bbox" or "segm". For "segm" the results' ``bbox`` is dropped so that area
            ranges use the mask area, as the ground truth does.
        max_dets: maxDets of the evaluation (a per image-and-category cap in the COCO API; the
            last one is the one AP uses).
        img_ids: the images to evaluate (default: every ground-truth image).
        lvis_style: LVIS federated semantics: a detection of a category that is neither in the
            image's ground truth nor in its ``neg_category_ids`` is ignored, an unmatched one of a
            category in ``not_exhaustive_category_ids`` is not a false positive.

    Returns:
        The evaluation, with ``eval["precision"]`` (``[T, R, K, A, M]``) and ``eval["recall"]``
        (``[T, K, A, M]``) over ``params.catIds`` (every ground-truth category, sorted by id).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got '{iou_type}'")
    results = copy.deepcopy(results)
    if iou_type == "segm":
        for result in results:
            if "segmentation" not in result:
                raise ValueError(
                    f"A result of image_id {result.get('image_id')} has no 'segmentation' "
                    f"for segm evaluation"
                )
            result.pop("bbox", None)
    if lvis_style:
        results = _verified_results(coco_gt, results)
    coco_dt = coco_gt.loadRes(results)
    coco_dt.print_function = logger.debug
    evaluation = COCOeval_faster(
        coco_gt, coco_dt, iou_type, print_function=logger.debug, lvis_style=lvis_style
    )
    if img_ids is not None:
        evaluation.params.imgIds = sorted(set(img_ids))
    evaluation.params.maxDets = sorted(int(m) for m in max_dets)
    evaluation.evaluate()
    evaluation.accumulate()
    return evaluation


def _verified_results(coco_gt: COCO, results: list[COCOResult]) -> list[COCOResult]:
    """The results whose category is verified in their image: present (it has ground truth there)
    or absent (in ``neg_category_ids``); LVIS ignores the others.

    faster-coco-eval applies the same rule itself, but fails on segm results of an image without
    any ground truth annotation when all of that image's results are dropped (it then lacks the
    image size), so the rule is applied here first and faster-coco-eval's becomes a no-op.
    """
    verified: dict[int, set[int]] = defaultdict(set)
    for image in coco_gt.dataset["images"]:
        verified[image["id"]].update(image.get("neg_category_ids", []))
    for ann in coco_gt.dataset["annotations"]:
        verified[ann["image_id"]].add(ann["category_id"])
    return [r for r in results if r["category_id"] in verified[r["image_id"]]]


def _percent_mean(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) * 100 if valid.size else math.nan


def _iou_index(iou_thrs: np.ndarray, threshold: float) -> int:
    hits = np.flatnonzero(np.isclose(iou_thrs, threshold))
    if hits.size == 0:
        raise ValueError(f"IoU threshold {threshold} is not among {iou_thrs.tolist()}")
    return int(hits[0])


def summary_metrics(evaluation: COCOeval_faster) -> dict[str, float]:
    """The standard COCO summary of an accumulated evaluation, in percent.

    Keys: AP, AP50, AP75, APs, APm, APl (at the largest maxDets), ``AR@k`` for every maxDets k,
    and ARs/ARm/ARl at the largest maxDets (e.g. ``ARs@100``).
    """
    params = evaluation.params
    precision = evaluation.eval["precision"]
    recall = evaluation.eval["recall"]
    areas = list(params.areaRngLbl)
    max_det = params.maxDets[-1]
    t50, t75 = _iou_index(params.iouThrs, 0.5), _iou_index(params.iouThrs, 0.75)
    metrics = {
        "AP": _percent_mean(precision[:, :, :, 0, -1]),
        "AP50": _percent_mean(precision[t50, :, :, 0, -1]),
        "AP75": _percent_mean(precision[t75, :, :, 0, -1]),
    }
    for name in AREA_NAMES[1:]:
        metrics[f"AP{name[0]}"] = _percent_mean(precision[:, :, :, areas.index(name), -1])
    for m, k in enumerate(params.maxDets):
        metrics[f"AR@{k}"] = _percent_mean(recall[:, :, 0, m])
    for name in AREA_NAMES[1:]:
        metrics[f"AR{name[0]}@{max_det}"] = _percent_mean(recall[:, :, areas.index(name), -1])
    return metrics


def per_class_ap(evaluation: COCOeval_faster) -> dict[int, tuple[float, float]]:
    """Per category id: (AP, AP50) in percent at area "all" and the largest maxDets; NaN for a
    category without (non-crowd) ground truth."""
    params = evaluation.params
    precision = evaluation.eval["precision"]
    t50 = _iou_index(params.iouThrs, 0.5)
    return {
        int(cat_id): (
            _percent_mean(precision[:, :, k, 0, -1]),
            _percent_mean(precision[t50, :, k, 0, -1]),
        )
        for k, cat_id in enumerate(params.catIds)
    }


def mean_over_classes(values: dict[int, float], cat_ids: Iterable[int]) -> tuple[float, int]:
    """Mean of ``values`` over ``cat_ids``, leaving out (explicitly) those that are NaN because
    the category has no ground truth; returns (mean, number of categories averaged)."""
    defined = [values[c] for c in cat_ids if c in values and not math.isnan(values[c])]
    return (float(np.mean(defined)) if defined else math.nan), len(defined)


def format_per_class_table(
    names: dict[int, str], per_class: dict[int, tuple[float, float]], splits: dict[int, str]
) -> str:
    """A plain-text table: category, split, AP, AP50 (``-`` where a class has no ground truth)."""
    width = max([len("category")] + [len(n) for n in names.values()])
    lines = [f"{'category':<{width}}  {'split':<6} {'AP':>6} {'AP50':>6}"]
    for cat_id in sorted(per_class):
        ap, ap50 = per_class[cat_id]
        cells = ["-" if math.isnan(v) else f"{v:.2f}" for v in (ap, ap50)]
        name = names.get(cat_id, str(cat_id))
        lines.append(f"{name:<{width}}  {splits.get(cat_id, ''):<6} {cells[0]:>6} {cells[1]:>6}")
    return "\n".join(lines)
