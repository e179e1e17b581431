"""CLIP pretraining on image–text pairs and zero-shot evaluation on object crops."""

from .data import (
    ImagePreprocessor,
    ImageTextPair,
    ImageTextPairDataset,
    build_pair_loader,
    pairs_from_dataset_dicts,
    read_rgb,
)
from .model import ContrastiveImageTextModel
from .zero_shot import (
    ObjectCrops,
    evaluate_zero_shot,
    format_zero_shot_table,
    load_object_crops,
)

__all__ = [
    "ContrastiveImageTextModel",
    "ImagePreprocessor",
    "ImageTextPair",
    "ImageTextPairDataset",
    "ObjectCrops",
    "build_pair_loader",
    "evaluate_zero_shot",
    "format_zero_shot_table",
    "load_object_crops",
    "pairs_from_dataset_dicts",
    "read_rgb",
]
