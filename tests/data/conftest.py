"""Small data the data tests write themselves: COCO/LVIS-layout jsons with images, OV-Shapes."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest
from pycocotools import mask as mask_util

from ovvision.data import DatasetCatalog, MetadataCatalog
from ovvision.data.datasets.ov_shapes import generate_ov_shapes

from ._helpers import coco_categories, write_image, write_json


@pytest.fixture
def unique_name():
    """A fresh dataset-name factory; the datasets it names are unregistered afterwards."""
    names: list[str] = []

    def make(prefix: str = "test") -> str:
        names.append(f"{prefix}_{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield make
    for name in names:
        for catalog in (DatasetCatalog, MetadataCatalog):
            if name in catalog.list():
                catalog.remove(name)


@pytest.fixture
def coco_root(tmp_path) -> str:
    """A COCO-layout folder: 3 images of 40x30 with polygons, RLE, crowd and broken annotations."""
    root = str(tmp_path / "coco")
    cats = {c["name"]: c["id"] for c in coco_categories()}
    airplane = np.zeros((30, 40), dtype=np.uint8, order="F")
    airplane[10:12, 20:23] = 1
    airplane_rle = mask_util.encode(airplane)
    airplane_rle["counts"] = airplane_rle["counts"].decode("ascii")
    for i in (1, 2, 3):
        write_image(os.path.join(root, "train2017", f"{i:012d}.jpg"), 40, 30, seed=i)
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 30, "width": 40} for i in (1, 2, 3)]
    annotations = [
        # image 1: a person polygon, an airplane RLE, a crowd (uncompressed RLE), broken ones
        {"id": 10, "image_id": 1, "category_id": cats["person"], "bbox": [2, 3, 10, 12],
         "segmentation": [[2, 3, 12, 3, 12, 15, 2, 15]], "area": 120, "iscrowd": 0},
        {"id": 11, "image_id": 1, "category_id": cats["airplane"], "bbox": [20, 10, 3, 2],
         "segmentation": airplane_rle, "area": 6, "iscrowd": 0},
        {"id": 12, "image_id": 1, "category_id": cats["person"], "bbox": [0, 0, 2, 2],
         "segmentation": {"size": [30, 40], "counts": [0, 2, 28, 2, 1168]}, "area": 4,
         "iscrowd": 1},
        {"id": 13, "image_id": 1, "category_id": cats["dog"], "bbox": [5, 5, 0, 4],
         "segmentation": [[5, 5, 5, 9, 5, 7]], "area": 0, "iscrowd": 0},
        {"id": 14, "image_id": 1, "category_id": cats["cat"], "bbox": [30, 20, 20, 20],
         "segmentation": [[30, 20, 39, 20, 39, 29], [1, 1, 2, 2]], "area": 50, "iscrowd": 0},
        {"id": 15, "image_id": 1, "category_id": cats["cat"], "bbox": [1, 1, 3, 3],
         "segmentation": [[1, 1, 4, 4]], "area": 9, "iscrowd": 0},
        # image 2: only a class in neither split, and a crowd region
        {"id": 20, "image_id": 2, "category_id": cats["stop sign"], "bbox": [1, 1, 5, 5],
         "area": 25, "iscrowd": 0},
        {"id": 21, "image_id": 2, "category_id": cats["bus"], "bbox": [1, 1, 9, 9],
         "area": 81, "iscrowd": 1},
        # image 3: nothing
    ]  # fmt: skip
    base = {"info": {}, "licenses": [], "images": images, "categories": coco_categories()}
    ann_dir = os.path.join(root, "annotations")
    write_json(
        os.path.join(ann_dir, "instances_train2017.json"), {**base, "annotations": annotations}
    )
    val_images = [{"id": 7, "file_name": "000000000007.jpg", "height": 30, "width": 40}]
    val_anns = [
        {"id": 70, "image_id": 7, "category_id": cats[name], "bbox": [1, 1, 4, 4], "area": 16,
         "iscrowd": 0}
        for name in ("cat", "person", "stop sign")
    ]  # fmt: skip
    for i, ann in enumerate(val_anns):
        ann["id"] = 70 + i
    write_json(
        os.path.join(ann_dir, "instances_val2017.json"),
        {**base, "images": val_images, "annotations": val_anns},
    )
    captions = [
        {"id": 5, "image_id": 1, "caption": "a man next to a plane "},
        {"id": 3, "image_id": 1, "caption": "A person and an airplane."},
        {"id": 9, "image_id": 2, "caption": "a stop sign"},
    ]
    write_json(
        os.path.join(ann_dir, "captions_train2017.json"),
        {"info": {}, "images": images, "annotations": captions},
    )
    return root


@pytest.fixture(scope="session")
def ov_shapes_root(tmp_path_factory) -> str:
    """A data root holding a small OV-Shapes set (48 train, 30 val, one worker process)."""
    root = tmp_path_factory.mktemp("ovs_root")
    generate_ov_shapes(
        str(root / "ov_shapes"), seed=0, num_train=48, num_val=30, workers=1, progress=False
    )
    return str(root)
