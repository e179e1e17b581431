"""Registration of the datasets ovvision knows by name, under one data root.

The root is ``$OVVISION_DATASETS`` (default ``./datasets``); ``datasets/README.md`` shows the tree
each dataset expects. Registering reads no file, so it never fails when data is absent; the first
use of a dataset names any json that is missing.
"""

from __future__ import annotations

import os

from .captions import register_coco_captions
from .coco_ov import COCO_OV_NOVEL_CLASSES, register_coco_ov_instances
from .lvis_ov import register_lvis_ov_instances
from .pretrain_pairs import register_pretrain_pairs
from .refexp import register_mdetr_refexp, register_refexp

__all__ = ["default_data_root", "register_all_builtin"]


def default_data_root() -> str:
    """``$OVVISION_DATASETS`` or ``./datasets``."""
    return os.path.expanduser(os.environ.get("OVVISION_DATASETS", "datasets"))


def register_coco_ov(root: str) -> None:
    """COCO 48/17: ``coco_ov_train_base``, ``coco_ov_train_captions`` (the base instances with
    ``captions_train2017.json`` attached), ``coco_ov_val``, ``coco_captions_{train,val}``."""
    coco = os.path.join(root, "coco")
    ann = os.path.join(coco, "annotations")
    for name, json_name, images in (
        ("coco_ov_train_base", "instances_train2017_ov_base.json", "train2017"),
        ("coco_ov_val", "instances_val2017_ov_all.json", "val2017"),
    ):
        register_coco_ov_instances(
            name,
            os.path.join(ann, json_name),
            os.path.join(coco, images),
            novel_classes=COCO_OV_NOVEL_CLASSES,
        )
    register_coco_ov_instances(
        "coco_ov_train_captions",
        os.path.join(ann, "instances_train2017_ov_base.json"),
        os.path.join(coco, "train2017"),
        novel_classes=COCO_OV_NOVEL_CLASSES,
        captions_json=os.path.join(ann, "captions_train2017.json"),
    )
    for split in ("train", "val"):
        register_coco_captions(
            f"coco_captions_{split}",
            os.path.join(ann, f"captions_{split}2017.json"),
            os.path.join(coco, f"{split}2017"),
        )


def register_lvis_ov(root: str) -> None:
    """LVIS v1 with rare = novel: ``lvis_v1_train_base``, ``lvis_v1_val``."""
    coco = os.path.join(root, "coco")
    for name, json_name in (
        ("lvis_v1_train_base", "lvis_v1_train_base.json"),
        ("lvis_v1_val", "lvis_v1_val.json"),
    ):
        register_lvis_ov_instances(name, os.path.join(root, "lvis", json_name), coco)


def register_refcoco(root: str) -> None:
    """RefCOCO in MDETR's format: ``refcoco_{train,val,testA,testB}`` from
    ``root/mdetr_annotations/final_refcoco_<split>.json`` on ``root/coco/train2014`` images."""
    for split in ("train", "val", "testA", "testB"):
        register_mdetr_refexp(
            f"refcoco_{split}",
            os.path.join(root, "mdetr_annotations", f"final_refcoco_{split}.json"),
            os.path.join(root, "coco", "train2014"),
        )


def register_ov_shapes(root: str, prefix: str = "ov_shapes") -> None:
    """OV-Shapes under ``root/ov_shapes`` (see ``tools/make_ov_shapes.py``).

    Registers ``{prefix}_train_base`` (= ``{prefix}_train_captions``), ``{prefix}_train_all``,
    ``{prefix}_val`` (instances with their captions attached), ``{prefix}_captions_{train,val}``,
    ``{prefix}_refexp_{train,val}``, ``{prefix}_refexp_train_base`` and
    ``{prefix}_pretrain_{train,val}``.
    """
    base = os.path.join(root, "ov_shapes")
    ann = os.path.join(base, "annotations")
    for name, json_name, split in (
        ("train_base", "instances_train_base.json", "train"),
        ("train_captions", "instances_train_base.json", "train"),  # the caption-loss name
        ("train_all", "instances_train_all.json", "train"),
        ("val", "instances_val.json", "val"),
    ):
        register_coco_ov_instances(
            f"{prefix}_{name}",
            os.path.join(ann, json_name),
            os.path.join(base, split),
            captions_json=os.path.join(ann, f"captions_{split}.json"),
        )
    for split in ("train", "val"):
        images = os.path.join(base, split)
        register_coco_captions(
            f"{prefix}_captions_{split}", os.path.join(ann, f"captions_{split}.json"), images
        )
        register_refexp(
            f"{prefix}_refexp_{split}", os.path.join(ann, f"refexp_{split}.json"), images
        )
        register_pretrain_pairs(
            f"{prefix}_pretrain_{split}", os.path.join(ann, f"pretrain_pairs_{split}.json"), images
        )
    register_refexp(  # grounding training: expressions about base-category objects only
        f"{prefix}_refexp_train_base",
        os.path.join(ann, "refexp_train.json"),
        os.path.join(base, "train"),
        base_only=True,
    )


def register_all_builtin(root: str | None = None) -> None:
    """Register COCO-OV, LVIS-OV, RefCOCO (MDETR format) and OV-Shapes under ``root`` (default:
    the data root)."""
    root = default_data_root() if root is None else root
    register_coco_ov(root)
    register_lvis_ov(root)
    register_refcoco(root)
    register_ov_shapes(root)
