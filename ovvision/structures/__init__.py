"""Data structures passed between components: boxes, per-image instances, padded image batches."""

from .boxes import Boxes, pairwise_iou
from .image_list import ImageList
from .instances import Instances
from .vocabulary import Vocabulary

__all__ = ["Boxes", "ImageList", "Instances", "Vocabulary", "pairwise_iou"]
