"""What a COCO-format evaluation computed, kept after it returns so that reports can show it.

A report must show the evaluator's own numbers, not recompute them: :class:`TaskEvaluation` holds
the accumulated ``precision`` array and the per-class AP that the evaluator averaged into its
metrics, and :class:`EvaluationSnapshot` the results and ground truth they were computed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from faster_coco_eval import COCOeval_faster

from .class_split import ClassSplit
from .coco_metrics import per_class_ap
from .coco_results import COCOResult


@dataclass(frozen=True)
class TaskEvaluation:
    """One task's ("bbox" or "segm") accumulated COCO evaluation.

    Attributes:
        precision: ``ndarray[T, R, K, A, M]`` (IoU thresholds x recall thresholds x categories x
            area ranges x maxDets); -1 where a category has no ground truth.
        iou_thresholds: ``ndarray[T]``.
        recall_thresholds: ``ndarray[R]`` (COCO: 0, 0.01, ..., 1).
        cat_ids: the K dataset category ids of the precision array's third axis.
        per_class_ap: category id -> (AP, AP50) in percent, NaN without ground truth (the values
            :meth:`COCOFormatEvaluator._class_metrics` averages into ``AP50-base/novel``).
    """

    precision: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    cat_ids: list[int]
    per_class_ap: dict[int, tuple[float, float]]

    @classmethod
    def from_coco_eval(cls, evaluation: COCOeval_faster) -> TaskEvaluation:
        params = evaluation.params
        return cls(
            precision=np.asarray(evaluation.eval["precision"]).copy(),
            iou_thresholds=np.asarray(params.iouThrs).copy(),
            recall_thresholds=np.asarray(params.recThrs).copy(),
            cat_ids=[int(c) for c in params.catIds],
            per_class_ap=per_class_ap(evaluation),
        )


@dataclass(frozen=True)
class EvaluationSnapshot:
    """The inputs and per-task evaluations of one ``evaluate()`` call.

    Attributes:
        gt_json: the ground-truth json.
        gt_dataset: its parsed content (``images``, ``annotations``, ``categories``).
        class_names: dataset category id -> class name.
        split: the base/novel split, or None when the evaluator knows none.
        results: the COCO results evaluated (after the per-image cap), sorted.
        image_ids: the evaluated images (None: every image of the ground truth).
        tasks: task -> its :class:`TaskEvaluation`.
    """

    gt_json: str
    gt_dataset: dict[str, Any]
    class_names: dict[int, str]
    split: ClassSplit | None
    results: list[COCOResult]
    image_ids: list[int] | None
    tasks: dict[str, TaskEvaluation] = field(default_factory=dict)
