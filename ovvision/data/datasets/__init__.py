"""Dataset loaders and registration: COCO-OV, LVIS-OV, captions, refexp, OV-Shapes."""

from .builtin import default_data_root, register_all_builtin, register_ov_shapes
from .captions import load_coco_captions_json, register_coco_captions
from .coco_ov import (
    COCO_OV_BASE_CLASSES,
    COCO_OV_NOVEL_CLASSES,
    category_fields,
    load_coco_json,
    make_ov_split_json,
    register_coco_ov_instances,
)
from .lvis_ov import (
    load_lvis_json,
    lvis_category_fields,
    make_lvis_base_json,
    register_lvis_ov_instances,
)
from .pretrain_pairs import load_pretrain_pairs_json, register_pretrain_pairs
from .refexp import load_refexp_json, register_refexp

__all__ = [
    "COCO_OV_BASE_CLASSES",
    "COCO_OV_NOVEL_CLASSES",
    "category_fields",
    "default_data_root",
    "load_coco_captions_json",
    "load_coco_json",
    "load_lvis_json",
    "load_pretrain_pairs_json",
    "load_refexp_json",
    "lvis_category_fields",
    "make_lvis_base_json",
    "make_ov_split_json",
    "register_all_builtin",
    "register_coco_captions",
    "register_coco_ov_instances",
    "register_lvis_ov_instances",
    "register_ov_shapes",
    "register_pretrain_pairs",
    "register_refexp",
]
