"""Data structures passed between components: boxes, per-image instances, padded image batches,
and the vocabulary (class lists before embedding, embedded vocabularies, region-head tensors)."""

from .boxes import Boxes, pairwise_iou, square_boxes
from .class_list import ClassList, as_class_list
from .image_list import ImageList
from .instances import Instances
from .vocabulary import ClassEmbeddings, Vocabulary, name_key

__all__ = [
    "Boxes",
    "ClassEmbeddings",
    "ClassList",
    "ImageList",
    "Instances",
    "Vocabulary",
    "as_class_list",
    "name_key",
    "pairwise_iou",
    "square_boxes",
]
