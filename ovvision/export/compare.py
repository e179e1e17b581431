"""onnxruntime against PyTorch on the same images: output parity, accuracy and latency."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ovvision.evaluation import DatasetEvaluator
from ovvision.modeling.meta_arch.ovrcnn import OVRCNN
from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.structures import Instances

from .onnx_runtime import OnnxDetector

logger = logging.getLogger(__name__)

# The parity bar: boxes within 1e-3 relative, the same classes, scores within 1e-4.
BOX_RTOL = 1e-3
SCORE_ATOL = 1e-4


@dataclass
class Parity:
    """How closely two detectors' raw outputs agree, image by image.

    Attributes:
        images: images compared.
        equal: images whose detections pair up one to one within :data:`BOX_RTOL` and
            :data:`SCORE_ATOL`, with the same classes.
        max_box_rel: largest ``|a - b| / max(|b|, 1)`` over box coordinates of paired
            detections.
        max_score_abs: largest score difference over paired detections.
        max_mask_abs: largest mask-probability difference over paired detections.
        mismatched: file names (or indices) of the images that do not agree.
    """

    images: int = 0
    equal: int = 0
    max_box_rel: float = 0.0
    max_score_abs: float = 0.0
    max_mask_abs: float = 0.0
    mismatched: list[str] = field(default_factory=list)

    def add(self, name: str, reference: Instances, other: Instances) -> bool:
        """Compare one image's raw detections; returns whether they agree.

        Detections are matched one to one, so two whose scores tie (within
        :data:`SCORE_ATOL`) may come in either order.
        """
        self.images += 1
        same = len(reference) == len(other)
        if same and len(reference):
            ref_boxes, boxes = reference.pred_boxes.tensor, other.pred_boxes.tensor
            rel = (boxes[None] - ref_boxes[:, None]).abs() / ref_boxes[:, None].abs().clamp(min=1)
            rel = rel.amax(dim=2)  # [reference, other]
            score = (other.scores[None] - reference.scores[:, None]).abs()
            close = (
                (rel <= BOX_RTOL)
                & (score <= SCORE_ATOL)
                & (other.pred_classes[None] == reference.pred_classes[:, None])
            )
            match = _match(close)
            same = match is not None
            if same:
                rows = torch.arange(len(reference))
                self.max_box_rel = max(self.max_box_rel, rel[rows, match].max().item())
                self.max_score_abs = max(self.max_score_abs, score[rows, match].max().item())
                if reference.has("pred_mask_probs") and other.has("pred_mask_probs"):
                    masks = other.pred_mask_probs[match] - reference.pred_mask_probs
                    self.max_mask_abs = max(self.max_mask_abs, masks.abs().max().item())
        if same:
            self.equal += 1
        else:
            self.mismatched.append(name)
        return same

    def as_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "equal": self.equal,
            "max_box_rel_diff": self.max_box_rel,
            "max_score_abs_diff": self.max_score_abs,
            "max_mask_abs_diff": self.max_mask_abs,
            "mismatched": self.mismatched[:20],
        }


def compare_on_loader(
    model: OVRCNN,
    detector: OnnxDetector,
    loader: Iterable[list[dict[str, Any]]],
    evaluators: tuple[DatasetEvaluator, DatasetEvaluator] | None = None,
    warmup: int = 5,
) -> dict[str, Any]:
    """Run PyTorch eager and onnxruntime on every image, one image at a time, side by side.

    Both get the same input and the same postprocessing (rescaling, mask pasting); latency is
    the per-image wall time of each runtime including that postprocessing, after ``warmup``
    images. Thread counts are whatever the caller set (``torch.set_num_threads``, the
    detector's session).

    Args:
        model: the PyTorch detector, its vocabulary set to the detector's.
        detector: the exported model in onnxruntime.
        loader: batches of mapper dicts (``"image"``, ``"height"``, ``"width"``, ...).
        evaluators: (for PyTorch, for onnxruntime), each reset here; None = no metrics.

    Returns:
        ``{"parity": ..., "latency_ms": {"pytorch": {...}, "onnxruntime": {...}},
        "metrics": {"pytorch": ..., "onnxruntime": ...}}``.
    """
    model.eval()
    for evaluator in evaluators or ():
        evaluator.reset()
    parity = Parity()
    times: dict[str, list[float]] = {"pytorch": [], "onnxruntime": []}
    with torch.no_grad():
        for inputs in loader:
            for item in inputs:
                start = time.perf_counter()
                reference = model.inference([item], do_postprocess=False)[0]
                ref_out = _postprocess(reference, item, model.mask_threshold)
                middle = time.perf_counter()
                other = detector.instances(item["image"])
                onnx_out = _postprocess(other, item, detector.mask_threshold)
                end = time.perf_counter()
                times["pytorch"].append(middle - start)
                times["onnxruntime"].append(end - middle)
                parity.add(str(item.get("file_name", parity.images)), reference, other)
                if parity.images % 100 == 0:
                    logger.info("%d images compared, %d equal", parity.images, parity.equal)
                if evaluators is not None:
                    evaluators[0].process([item], [ref_out])
                    evaluators[1].process([item], [onnx_out])
    result: dict[str, Any] = {
        "parity": parity.as_dict(),
        "latency_ms": {name: _summary(t[warmup:] or t) for name, t in times.items()},
    }
    if evaluators is not None:
        result["metrics"] = {
            "pytorch": evaluators[0].evaluate(),
            "onnxruntime": evaluators[1].evaluate(),
        }
    return result


def _match(close: torch.Tensor) -> torch.Tensor | None:
    """For each row, a distinct column where ``close`` holds (greedy, in row order), or None."""
    taken = torch.zeros(close.shape[1], dtype=torch.bool)
    match = []
    for row in close:
        free = torch.where(row & ~taken)[0]
        if len(free) == 0:
            return None
        taken[free[0]] = True
        match.append(int(free[0]))
    return torch.tensor(match, dtype=torch.int64)


def _postprocess(result: Instances, item: dict[str, Any], threshold: float) -> dict[str, Any]:
    height = int(item.get("height", result.image_size[0]))
    width = int(item.get("width", result.image_size[1]))
    return {"instances": detector_postprocess(result, height, width, threshold)}


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    if ms.size == 0:
        return {"images": 0}
    return {
        "images": int(ms.size),
        "mean": float(ms.mean()),
        "median": float(np.median(ms)),
        "p90": float(np.percentile(ms, 90)),
    }
