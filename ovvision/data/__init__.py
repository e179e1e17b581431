"""Datasets, image reading, mappers, samplers and loaders.

Importing this package registers the built-in datasets (COCO-OV, LVIS-OV, OV-Shapes) under
``$OVVISION_DATASETS`` (default ``./datasets``); registration reads no file.
"""

from .build import (
    build_detection_test_loader,
    build_detection_train_loader,
    build_train_sampler,
    get_detection_dataset_dicts,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog
from .datasets import (
    load_coco_json,
    load_lvis_json,
    register_all_builtin,
    register_coco_ov_instances,
    register_lvis_ov_instances,
)
from .image_io import ImageReadError, ImageTooLargeError, pil_to_rgb_array, read_image
from .mapper import DatasetMapper
from .open_vocab import dataset_novel_flags, drop_novel_annotations, vocabulary_for_dataset
from .samplers import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler

register_all_builtin()

__all__ = [
    "DatasetCatalog",
    "DatasetMapper",
    "ImageReadError",
    "ImageTooLargeError",
    "InferenceSampler",
    "Metadata",
    "MetadataCatalog",
    "RepeatFactorTrainingSampler",
    "TrainingSampler",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "build_train_sampler",
    "dataset_novel_flags",
    "drop_novel_annotations",
    "get_detection_dataset_dicts",
    "load_coco_json",
    "load_lvis_json",
    "pil_to_rgb_array",
    "read_image",
    "register_coco_ov_instances",
    "register_lvis_ov_instances",
    "vocabulary_for_dataset",
]
