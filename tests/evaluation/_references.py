"""The reference evaluations our numbers are checked against: pycocotools and lvis-api.

lvis 0.5.3's ``LVISEval.accumulate`` calls ``np.float``, an alias NumPy removed in 1.24. The shim
below defines it only while the reference evaluation runs and removes it afterwards, so no other
code can come to depend on it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval


def reference_eval(gt_path, results, iou_type, max_dets=(1, 10, 100), img_ids=None):
    """pycocotools' evaluation of the same inputs (silenced; [] handled as an empty result set,
    which pycocotools' loadRes cannot load)."""
    results = copy.deepcopy(results)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = PyCOCO(gt_path)
        if iou_type == "segm":
            for r in results:
                r.pop("bbox", None)
        if results:
            dt = gt.loadRes(results)
        else:
            dt = PyCOCO()
            dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"]}
            dt.dataset["annotations"] = []
            dt.createIndex()
        evaluation = PyCOCOeval(gt, dt, iou_type)
        evaluation.params.maxDets = list(max_dets)
        if img_ids is not None:
            evaluation.params.imgIds = list(img_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        if list(max_dets) == [1, 10, 100]:
            evaluation.summarize()
    return evaluation


@contextmanager
def numpy_aliases_for_lvis() -> Iterator[None]:
    """Define ``np.float = float`` inside the block if NumPy lacks it; remove it on exit."""
    added = "float" not in np.__dict__
    if added:
        np.float = float  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if added:
            del np.float  # type: ignore[attr-defined]


def lvis_api_eval(
    gt_path: str, results: list[dict[str, Any]], iou_type: str, max_dets: int = 300
) -> Any:
    """lvis-api's evaluation (run) of ``results``; ``max_dets=-1`` disables its per-image cap.

    For segm the results' boxes are dropped, so that area ranges use mask areas (as ours do).
    """
    from lvis import LVIS, LVISEval, LVISResults

    results = copy.deepcopy(results)
    if iou_type == "segm":
        for r in results:
            r.pop("bbox", None)
    logging.getLogger("lvis").setLevel(logging.ERROR)
    gt = LVIS(gt_path)
    evaluation = LVISEval(gt, LVISResults(gt, results, max_dets=max_dets), iou_type)
    with numpy_aliases_for_lvis():
        evaluation.run()
    return evaluation
