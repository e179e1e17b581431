"""Predictions in the formats other toolkits take: Hugging Face pipelines and ``supervision``.

Both adapters read the ``Instances`` a model or the Predictor returns (``pred_boxes`` XYXY in
original image pixels, ``scores``, ``pred_classes`` indexing ``class_names``, optional
``pred_masks``) and never change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ovvision.structures import Instances

if TYPE_CHECKING:
    import supervision

__all__ = ["to_hf_zero_shot", "to_supervision"]


def _fields(instances: Instances, class_names: Sequence[str]) -> tuple[np.ndarray, ...]:
    """``(boxes float32[N, 4], scores float32[N], classes int64[N])`` after checking the classes."""
    for field in ("pred_boxes", "scores", "pred_classes"):
        if not instances.has(field):
            raise ValueError(f"Instances have no field '{field}'; expected a model's predictions")
    boxes = instances.pred_boxes.tensor.detach().to("cpu", torch.float32).numpy().reshape(-1, 4)
    scores = instances.scores.detach().to("cpu", torch.float32).numpy()
    classes = instances.pred_classes.detach().to("cpu", torch.int64).numpy()
    outside = sorted({int(c) for c in classes if not 0 <= c < len(class_names)})
    if outside:
        raise ValueError(
            f"pred_classes {outside} are outside class_names ({len(class_names)} names)"
        )
    return boxes, scores, classes


def to_hf_zero_shot(
    instances: Instances,
    class_names: Sequence[str],
    threshold: float = 0.0,
    top_k: int | None = None,
) -> list[dict[str, Any]]:
    """The output of Hugging Face's ``zero-shot-object-detection`` pipeline for one image.

    Like the pipeline: detections with ``score >= threshold``, best first (ties keep the model's
    order), at most ``top_k``, boxes as integer pixel corners (truncated, as the pipeline does).

    Args:
        instances: one image's predictions.
        class_names: names that ``pred_classes`` index (e.g. ``predictor.class_names``).
        threshold: lowest score kept.
        top_k: keep at most this many; None keeps all.

    Returns:
        ``[{"score": float, "label": str, "box": {"xmin", "ymin", "xmax", "ymax": int}}, ...]``.

    Raises:
        ValueError: a prediction field is missing or a class index is outside ``class_names``.
    """
    boxes, scores, classes = _fields(instances, class_names)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= threshold]
    if top_k is not None:
        order = order[:top_k]
    return [
        {
            "score": float(scores[i]),
            "label": class_names[int(classes[i])],
            "box": dict(zip(("xmin", "ymin", "xmax", "ymax"), (int(v) for v in boxes[i]))),
        }
        for i in order
    ]


def to_supervision(instances: Instances, class_names: Sequence[str]) -> supervision.Detections:
    """``supervision.Detections`` of one image's predictions, in the model's order.

    Args:
        instances: one image's predictions; ``pred_masks`` (Tensor[N, H, W], bool or
            probabilities, thresholded at 0.5) become ``mask`` when present.
        class_names: names that ``pred_classes`` index.

    Returns:
        Detections with ``xyxy`` (float32[N, 4]), ``confidence`` (float32[N]), ``class_id``
        (int[N]), ``mask`` (bool[N, H, W] or None) and ``data["class_name"]`` (str[N]).

    Raises:
        ValueError: a prediction field is missing or a class index is outside ``class_names``.
    """
    import supervision as sv

    boxes, scores, classes = _fields(instances, class_names)
    mask = None
    if instances.has("pred_masks"):
        masks = instances.pred_masks.detach().to("cpu")
        mask = (masks if masks.dtype == torch.bool else masks >= 0.5).numpy()
    names = np.array([class_names[int(c)] for c in classes], dtype=str)
    return sv.Detections(
        xyxy=boxes,
        mask=mask,
        confidence=scores,
        class_id=classes.astype(int),
        data={"class_name": names},
    )
