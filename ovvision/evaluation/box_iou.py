"""Box IoU in COCO's XYWH convention, computed by pycocotools as its evaluators do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_util

__all__ = ["iou_xywh"]


def iou_xywh(a: np.ndarray | Sequence, b: np.ndarray | Sequence) -> np.ndarray:
    """IoU of boxes ``a[N, 4]`` and ``b[M, 4]`` (x, y, w, h) as ``ndarray[N, M]`` (float64)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.asarray(mask_util.iou(a, b, [0] * len(b))).reshape(len(a), len(b))
