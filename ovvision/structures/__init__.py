"""Data structures passed between components: boxes, per-image instances, padded image batches."""

from .boxes import Boxes, pairwise_iou
from .image_list import ImageList
from .instances import Instances

__all__ = ["Boxes", "ImageList", "Instances", "pairwise_iou"]
