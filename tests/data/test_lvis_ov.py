"""LVIS v1 loading (synonyms, r/c/f, negative and not-exhaustive ids), the base-only json, RFS."""

from __future__ import annotations

import json
import math
import os
import runpy

import pytest
import torch

from ovvision.data import (
    DatasetCatalog,
    MetadataCatalog,
    RepeatFactorTrainingSampler,
    load_lvis_json,
    register_lvis_ov_instances,
)

from ._helpers import write_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CATEGORIES = [
    {"id": 3, "name": "aerosol_can", "synonyms": ["aerosol_can", "spray_can"], "frequency": "c",
     "image_count": 2, "instance_count": 2, "def": "a dispenser", "synset": "can.n.01"},
    {"id": 1, "name": "apple", "synonyms": ["apple"], "frequency": "f", "image_count": 3,
     "instance_count": 5, "def": "fruit", "synset": "apple.n.01"},
    {"id": 7, "name": "bagpipe", "synonyms": ["bagpipe"], "frequency": "r", "image_count": 1,
     "instance_count": 1, "def": "instrument", "synset": "bagpipe.n.01"},
]  # fmt: skip


def _lvis_json() -> dict:
    def img(i, neg, not_exhaustive):
        return {
            "id": i, "height": 20, "width": 30, "neg_category_ids": neg,
            "not_exhaustive_category_ids": not_exhaustive,
            "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
        }  # fmt: skip

    def ann(i, image_id, cat):
        return {"id": i, "image_id": image_id, "category_id": cat, "bbox": [1, 1, 5, 4],
                "area": 20, "segmentation": [[1, 1, 6, 1, 6, 5, 1, 5]]}  # fmt: skip

    return {
        "info": {}, "licenses": [], "categories": CATEGORIES,
        "images": [img(1, [3, 7], [1]), img(2, [], [7]), img(3, [1], [])],
        "annotations": [ann(10, 1, 1), ann(11, 1, 1), ann(12, 2, 7), ann(13, 2, 3), ann(14, 3, 1)],
    }  # fmt: skip


@pytest.fixture
def lvis_root(tmp_path) -> str:
    root = str(tmp_path / "lvis")
    write_json(os.path.join(root, "lvis_v1_train.json"), _lvis_json())
    return root


def test_load_lvis_json(lvis_root):
    dicts = load_lvis_json(os.path.join(lvis_root, "lvis_v1_train.json"), "/coco")
    # contiguous ids follow json ids: apple (1) -> 0, aerosol_can (3) -> 1, bagpipe (7) -> 2
    first = dicts[0]
    assert first["file_name"] == os.path.join("/coco", "train2017", "000000000001.jpg")
    assert first["neg_category_ids"] == [1, 2] and first["not_exhaustive_category_ids"] == [0]
    assert [a["category_id"] for a in first["annotations"]] == [0, 0]
    assert first["annotations"][0]["segmentation"] == [[1.0, 1.0, 6.0, 1.0, 6.0, 5.0, 1.0, 5.0]]
    assert first["annotations"][0]["iscrowd"] == 0
    assert [a["category_id"] for a in dicts[1]["annotations"]] == [2, 1]


def test_lvis_metadata(lvis_root, unique_name):
    name = unique_name()
    register_lvis_ov_instances(name, os.path.join(lvis_root, "lvis_v1_train.json"), "/coco")
    meta = MetadataCatalog.get(name)
    assert meta.evaluator_type == "lvis_ov"
    assert meta.thing_classes == ["apple", "aerosol_can", "bagpipe"]
    assert meta.class_frequency == ["f", "c", "r"]
    assert meta.synonyms == [["apple"], ["aerosol_can", "spray_can"], ["bagpipe"]]
    assert meta.class_image_count == [3, 2, 1]
    assert meta.novel_classes == ["bagpipe"] and meta.base_classes == ["apple", "aerosol_can"]
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 3: 1, 7: 2}
    assert len(DatasetCatalog.get(name)) == 3


def test_unknown_negative_category_raises(tmp_path):
    data = _lvis_json()
    data["images"][0]["neg_category_ids"] = [99]
    path = write_json(str(tmp_path / "bad.json"), data)
    with pytest.raises(ValueError, match=r"bad.json: image 1 neg_category_ids .*\[99\]"):
        load_lvis_json(path, "")


def test_prepare_lvis_ov_script_removes_every_trace_of_rare(lvis_root, unique_name):
    script = os.path.join(REPO, "datasets", "prepare_lvis_ov.py")
    runpy.run_path(script, run_name="prepare")["main"](["--lvis-root", lvis_root])
    base_json = os.path.join(lvis_root, "lvis_v1_train_base.json")
    with open(base_json) as f:
        base = json.load(f)
    assert [c["name"] for c in base["categories"]] == ["aerosol_can", "apple"]
    assert {c["split"] for c in base["categories"]} == {"base"}
    assert [(c["name"], c["split"]) for c in base["novel_categories"]] == [("bagpipe", "novel")]
    assert sorted(a["id"] for a in base["annotations"]) == [10, 11, 13, 14]
    assert [i["neg_category_ids"] for i in base["images"]] == [[3], [], [1]]
    assert [i["not_exhaustive_category_ids"] for i in base["images"]] == [[1], [], []]
    name = unique_name()
    register_lvis_ov_instances(name, base_json, "/coco")
    meta = MetadataCatalog.get(name)
    assert meta.thing_classes == ["apple", "aerosol_can"]
    assert meta.novel_classes == ["bagpipe"] and meta.base_classes == ["apple", "aerosol_can"]
    assert meta.class_frequency == ["f", "c"]
    dicts = DatasetCatalog.get(name)
    assert [len(d["annotations"]) for d in dicts] == [2, 1, 1]


def test_repeat_factors_from_category_frequency(lvis_root):
    dicts = load_lvis_json(os.path.join(lvis_root, "lvis_v1_train.json"), "")
    # apple in 2 of 3 images, aerosol_can in 1, bagpipe in 1
    factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, 0.5)
    rare = math.sqrt(0.5 / (1 / 3))
    torch.testing.assert_close(factors, torch.tensor([1.0, rare, 1.0]))
    no_repeat = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, 0.001)
    torch.testing.assert_close(no_repeat, torch.ones(3))
