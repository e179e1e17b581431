"""COCO-format loading (polygons, RLE, crowd, captions), sanitising and the COCO-OV split."""

from __future__ import annotations

import json
import logging
import os
import runpy

import pytest

from ovvision.data import (
    DatasetCatalog,
    MetadataCatalog,
    load_coco_json,
    register_coco_ov_instances,
)
from ovvision.data.datasets import (
    COCO_OV_BASE_CLASSES,
    COCO_OV_NOVEL_CLASSES,
    load_coco_captions_json,
    register_coco_captions,
)
from ovvision.data.sanitize import DropCounter, sanitize_annotation

from ._helpers import COCO_UNUSED_CLASSES, coco_categories, write_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_train(coco_root):
    return load_coco_json(
        os.path.join(coco_root, "annotations", "instances_train2017.json"),
        os.path.join(coco_root, "train2017"),
        "fixture",
    )


def test_split_constants():
    assert len(COCO_OV_BASE_CLASSES) == 48 and len(COCO_OV_NOVEL_CLASSES) == 17
    assert not set(COCO_OV_BASE_CLASSES) & set(COCO_OV_NOVEL_CLASSES)
    assert len(set(COCO_OV_BASE_CLASSES + COCO_OV_NOVEL_CLASSES + COCO_UNUSED_CLASSES)) == 80


def test_load_coco_json_fields_and_sanitising(coco_root, caplog):
    id_map = {c["id"]: i for i, c in enumerate(coco_categories())}
    names = [c["name"] for c in coco_categories()]
    with caplog.at_level(logging.WARNING):
        dicts = _load_train(coco_root)
    assert [d["image_id"] for d in dicts] == [1, 2, 3]
    first = dicts[0]
    assert first["file_name"] == os.path.join(coco_root, "train2017", "000000000001.jpg")
    assert (first["height"], first["width"]) == (30, 40)
    anns = {a["id"]: a for a in first["annotations"]}
    assert sorted(anns) == [10, 11, 12, 14]  # 13: zero-width box dropped
    assert names[anns[10]["category_id"]] == "person"
    assert anns[10]["segmentation"] == [[2.0, 3.0, 12.0, 3.0, 12.0, 15.0, 2.0, 15.0]]
    assert anns[10]["bbox"] == [2.0, 3.0, 10.0, 12.0] and anns[10]["iscrowd"] == 0
    assert names[anns[11]["category_id"]] == "airplane"
    assert isinstance(anns[11]["segmentation"]["counts"], str)
    assert anns[12]["iscrowd"] == 1 and anns[12]["segmentation"]["counts"] == [0, 2, 28, 2, 1168]
    assert anns[14]["bbox"] == [30.0, 20.0, 10.0, 10.0]  # clipped to the 40x30 image
    assert len(anns[14]["segmentation"]) == 1  # the 2-point polygon is gone
    assert set(anns[14]) == {"id", "bbox", "category_id", "iscrowd", "segmentation"}
    assert dicts[2]["annotations"] == []
    assert all(a["category_id"] in id_map.values() for d in dicts for a in d["annotations"])
    # every drop is logged once, in one line, with its count
    lines = [r.getMessage() for r in caplog.records if "fixture" in r.getMessage()]
    assert len(lines) == 1
    assert "degenerate box (no area inside the image): 1" in lines[0]
    assert "polygons dropped: fewer than 3 points: 2" in lines[0]
    assert "boxes clipped to the image: 1" in lines[0]
    assert "annotations dropped: no valid polygon: 1" in lines[0]


def test_load_errors_name_the_file_and_id(tmp_path):
    cats = [{"id": 1, "name": "a"}]
    img = {"id": 1, "file_name": "x.jpg", "height": 4, "width": 4}
    bad_category = write_json(
        str(tmp_path / "bad_cat.json"),
        {"images": [img], "categories": cats, "annotations": [
            {"id": 5, "image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1]}]},
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"bad_cat.json: annotation 5 has category_id 2"):
        load_coco_json(bad_category, "")
    duplicate = write_json(
        str(tmp_path / "dup.json"),
        {"images": [img], "categories": cats, "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}] * 2},
    )  # fmt: skip
    with pytest.raises(ValueError, match="annotation id 5 appears more than once"):
        load_coco_json(duplicate, "")
    no_size = write_json(
        str(tmp_path / "nosize.json"),
        {"images": [{"id": 3, "file_name": "y.jpg"}], "categories": cats, "annotations": []},
    )
    with pytest.raises(ValueError, match=r"nosize.json: image 3 lacks the fields \['height'"):
        load_coco_json(no_size, "")
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        load_coco_json(str(tmp_path / "nothing.json"), "")


def test_sanitize_rle_bytes_and_bad_sizes():
    counter = DropCounter("unit")
    rle = {"size": [2, 3], "counts": b"06"}
    clean = sanitize_annotation({"id": 1, "bbox": [0, 0, 3, 2], "segmentation": rle}, 3, 2, counter)
    assert clean["segmentation"] == {"size": [2, 3], "counts": "06"}
    json.dumps(clean)  # JSON-safe now
    wrong_size = {"size": [5, 5], "counts": "06"}
    ann = {"id": 2, "bbox": [0, 0, 1, 1], "segmentation": wrong_size}
    assert sanitize_annotation(ann, 3, 2, counter) is None
    assert sanitize_annotation({"id": 3, "bbox": [0, 0, float("nan"), 1]}, 3, 2, counter) is None
    assert sanitize_annotation({"id": 4, "bbox": [5, 5, 2, 2]}, 3, 2, counter) is None
    assert counter.counts == {
        "RLE counts converted from bytes to str": 1,
        "annotations dropped: RLE without counts or with a size unlike the image": 1,
        "annotations dropped: bbox missing or not 4 finite numbers": 1,
        "annotations dropped: degenerate box (no area inside the image)": 1,
    }


def test_captions_loader_and_attached_captions(coco_root, unique_name):
    ann = os.path.join(coco_root, "annotations")
    captions_json = os.path.join(ann, "captions_train2017.json")
    dicts = load_coco_captions_json(captions_json, os.path.join(coco_root, "train2017"))
    assert [d["captions"] for d in dicts] == [
        ["A person and an airplane.", "a man next to a plane"],  # id order, stripped
        ["a stop sign"],
        [],
    ]
    assert "annotations" not in dicts[0]
    name = unique_name()
    register_coco_captions(name, captions_json, os.path.join(coco_root, "train2017"))
    assert MetadataCatalog.get(name).evaluator_type == "caption"
    assert DatasetCatalog.get(name) == dicts
    with_captions = load_coco_json(
        os.path.join(ann, "instances_train2017.json"), "", captions_json=captions_json
    )
    assert with_captions[1]["captions"] == ["a stop sign"]


def test_register_user_dataset_in_one_call(coco_root, unique_name):
    name = unique_name()
    json_file = os.path.join(coco_root, "annotations", "instances_train2017.json")
    register_coco_ov_instances(name, json_file, coco_root, novel_classes=["cat", "dog"])
    meta = MetadataCatalog.get(name)
    assert meta.json_file == json_file and meta.image_root == coco_root
    assert meta.evaluator_type == "coco_ov"
    names = [c["name"] for c in coco_categories()]
    assert meta.thing_classes == names
    assert meta.novel_classes == ["cat", "dog"]
    assert meta.base_classes == [n for n in names if n not in ("cat", "dog")]
    assert meta.thing_dataset_id_to_contiguous_id == {2 * i + 1: i for i in range(80)}
    assert len(DatasetCatalog.get(name)) == 3


def test_prepare_coco_ov_script(coco_root, unique_name):
    script = os.path.join(REPO, "datasets", "prepare_coco_ov.py")
    runpy.run_path(script, run_name="prepare")["main"](["--coco-root", coco_root])
    ann = os.path.join(coco_root, "annotations")
    with open(os.path.join(ann, "instances_train2017_ov_base.json")) as f:
        train = json.load(f)
    with open(os.path.join(ann, "instances_val2017_ov_all.json")) as f:
        val = json.load(f)
    by_id = {c["id"]: c["name"] for c in coco_categories()}
    assert sorted(c["name"] for c in train["categories"]) == sorted(COCO_OV_BASE_CLASSES)
    assert {c["split"] for c in train["categories"]} == {"base"}
    assert sorted(c["name"] for c in train["novel_categories"]) == sorted(COCO_OV_NOVEL_CLASSES)
    assert [by_id[a["category_id"]] for a in train["annotations"]] == ["person", "person"]
    assert len(train["images"]) == 3  # images with novel objects stay, unannotated
    assert {c["name"]: c["split"] for c in val["categories"]} == {
        **{n: "base" for n in COCO_OV_BASE_CLASSES},
        **{n: "novel" for n in COCO_OV_NOVEL_CLASSES},
    }
    assert sorted(by_id[a["category_id"]] for a in val["annotations"]) == ["cat", "person"]
    # registered without naming the novel classes, the split comes from the files
    train_name, val_name = unique_name(), unique_name()
    register_coco_ov_instances(
        train_name, os.path.join(ann, "instances_train2017_ov_base.json"), ""
    )
    register_coco_ov_instances(val_name, os.path.join(ann, "instances_val2017_ov_all.json"), "")
    train_meta, val_meta = MetadataCatalog.get(train_name), MetadataCatalog.get(val_name)
    assert sorted(train_meta.thing_classes) == sorted(COCO_OV_BASE_CLASSES)
    assert sorted(train_meta.novel_classes) == sorted(COCO_OV_NOVEL_CLASSES)
    assert sorted(val_meta.novel_classes) == sorted(COCO_OV_NOVEL_CLASSES)
    assert sorted(val_meta.base_classes) == sorted(COCO_OV_BASE_CLASSES)
    assert len(val_meta.thing_classes) == 65
    dicts = DatasetCatalog.get(train_name)
    assert {
        train_meta.thing_classes[a["category_id"]] for d in dicts for a in d["annotations"]
    } == {"person"}
