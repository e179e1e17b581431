"""Annotation sanitising: make COCO-style annotations safe to train on, and count every change.

Real annotation files contain boxes outside the image or of zero size, polygons with fewer than
three points, and RLE masks whose ``counts`` are ``bytes`` (not JSON-serialisable). Each fix or drop
is counted by reason and logged once per dataset by :class:`DropCounter`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["DropCounter", "clip_box_xywh", "sanitize_annotation"]


class DropCounter:
    """Counts annotations (or images) changed or dropped, by reason, for one dataset.

    Args:
        dataset_name: used in the log line.
    """

    def __init__(self, dataset_name: str):
        self.dataset_name = dataset_name
        self.counts: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        if n:
            self.counts[reason] += n

    def log(self) -> None:
        """One warning line listing every reason with its count (nothing when all was clean)."""
        if self.counts:
            details = "; ".join(f"{reason}: {n}" for reason, n in sorted(self.counts.items()))
            logger.warning("Dataset '%s' sanitising: %s", self.dataset_name, details)


def sanitize_annotation(
    ann: dict[str, Any], width: int, height: int, counter: DropCounter
) -> dict[str, Any] | None:
    """A cleaned copy of one COCO annotation, or ``None`` when it must be dropped.

    Boxes (XYWH, absolute pixels) are clipped to the ``width x height`` image; a box that is not
    4 finite numbers or has no area inside the image drops the annotation. Polygons with fewer than
    3 points are removed, and an annotation whose polygons are all removed is dropped. RLE
    ``counts`` given as ``bytes`` become ``str``; an RLE whose size differs from the image drops
    the annotation.

    Args:
        ann: the annotation as read from json (not modified).
        width: image width in pixels.
        height: image height in pixels.
        counter: receives one count per fix or drop.

    Returns:
        A new dict with the keys of ``ann``, ``bbox`` clipped and ``segmentation`` cleaned.
    """
    box = clip_box_xywh(ann.get("bbox"), width, height, counter)
    if box is None:
        return None
    out = dict(ann)
    out["bbox"] = box
    out["iscrowd"] = int(ann.get("iscrowd", 0))
    if "segmentation" in ann:
        segm = _clean_segmentation(ann["segmentation"], width, height, counter)
        if segm is None:
            return None
        out["segmentation"] = segm
    return out


def clip_box_xywh(bbox: Any, width: int, height: int, counter: DropCounter) -> list[float] | None:
    """``bbox`` (XYWH) clipped to the image, or None (counted) if it is not 4 finite numbers or
    has no area inside the image."""
    if (
        not isinstance(bbox, list | tuple)
        or len(bbox) != 4
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)
    ):
        counter.add("annotations dropped: bbox missing or not 4 finite numbers")
        return None
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        counter.add("annotations dropped: degenerate box (no area inside the image)")
        return None
    clipped = [x1, y1, x2 - x1, y2 - y1]
    if clipped != [x, y, w, h]:
        counter.add("boxes clipped to the image")
    return clipped


def _clean_segmentation(
    segm: Any, width: int, height: int, counter: DropCounter
) -> list[list[float]] | dict[str, Any] | None:
    if isinstance(segm, dict):
        return _clean_rle(segm, width, height, counter)
    if not isinstance(segm, list):
        counter.add("annotations dropped: segmentation neither polygons nor RLE")
        return None
    polygons = [
        [float(v) for v in poly]
        for poly in segm
        if isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
    ]
    if len(polygons) < len(segm):
        counter.add("polygons dropped: fewer than 3 points", len(segm) - len(polygons))
    if not polygons:
        counter.add("annotations dropped: no valid polygon")
        return None
    return polygons


def _clean_rle(
    rle: dict[str, Any], width: int, height: int, counter: DropCounter
) -> dict[str, Any] | None:
    counts, size = rle.get("counts"), rle.get("size")
    if counts is None or size is None or list(size) != [height, width]:
        counter.add("annotations dropped: RLE without counts or with a size unlike the image")
        return None
    if isinstance(counts, bytes):
        counter.add("RLE counts converted from bytes to str")
        counts = counts.decode("ascii")
    return {"size": [int(height), int(width)], "counts": counts}
