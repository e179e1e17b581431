"""Referring-expression loaders: MDETR's RefCOCO format, the OV-VG layout, base-only refs,
on small fixture files written here in those formats."""

from __future__ import annotations

import os

import pytest

from ovvision.data import DatasetCatalog, MetadataCatalog
from ovvision.data.datasets.refexp import (
    load_mdetr_refexp_json,
    load_ovvg_json,
    load_refexp_json,
    register_mdetr_refexp,
    register_ovvg,
)

from ._helpers import write_json

CATEGORIES = [{"id": 1, "name": "person", "split": "base"}, {"id": 18, "name": "dog",
              "split": "novel"}]  # fmt: skip


def _mdetr(root: str) -> str:
    """Two (image, expression) entries of COCO image 9, one of image 7 whose box is outside."""
    images = [
        {
            "id": 0,
            "file_name": "COCO_train2014_000000000009.jpg",
            "height": 40,
            "width": 60,
            "caption": "man in red shirt",
            "original_img_id": 9,
            "tokens_positive": [[0, 3]],
        },
        {
            "id": 1,
            "file_name": "COCO_train2014_000000000009.jpg",
            "height": 40,
            "width": 60,
            "caption": "the dog on the left",
            "original_img_id": 9,
        },
        {
            "id": 2,
            "file_name": "COCO_train2014_000000000007.jpg",
            "height": 40,
            "width": 60,
            "caption": "nothing there",
            "original_img_id": 7,
        },
    ]
    annotations = [
        {"id": 0, "image_id": 0, "bbox": [5, 5, 10, 20], "category_id": 1, "area": 200,
         "iscrowd": 0, "tokens_positive": [[0, 3]], "original_id": 501},
        {"id": 1, "image_id": 1, "bbox": [50, 10, 20, 10], "category_id": 18, "area": 200,
         "iscrowd": 0, "tokens_positive": [[4, 7]], "original_id": 502},
        {"id": 2, "image_id": 2, "bbox": [70, 10, 5, 5], "category_id": 1, "area": 25,
         "iscrowd": 0, "tokens_positive": [[0, 7]], "original_id": 503},
    ]  # fmt: skip
    path = os.path.join(root, "final_refcoco_val.json")
    return write_json(path, {"images": images, "annotations": annotations,
                             "categories": CATEGORIES})  # fmt: skip


def test_mdetr_refcoco_format(tmp_path, unique_name):
    path = _mdetr(str(tmp_path))
    dicts = load_mdetr_refexp_json(path, "/images")
    assert [d["image_id"] for d in dicts] == [9, 7]
    nine = dicts[0]
    assert nine["file_name"] == "/images/COCO_train2014_000000000009.jpg"
    assert [a["id"] for a in nine["annotations"]] == [501, 502]
    first, second = nine["expressions"]
    assert first == {"id": 0, "text": "man in red shirt", "ann_id": 501,
                     "bbox": [5.0, 5.0, 10.0, 20.0], "category_id": 0, "phrase": "man"}  # fmt: skip
    assert second["bbox"] == [50.0, 10.0, 10.0, 10.0]  # clipped to the 60-pixel width
    assert second["category_id"] == 1 and second["phrase"] == "dog"
    assert dicts[1]["expressions"] == []  # its only box lies outside the image: dropped
    name = unique_name("refcoco")
    register_mdetr_refexp(name, path, "/images")
    assert MetadataCatalog.get(name).evaluator_type == "grounding"
    assert MetadataCatalog.get(name).novel_classes == ["dog"]
    assert len(DatasetCatalog.get(name)) == 2


def test_ovvg_layout(tmp_path, unique_name):
    path = write_json(str(tmp_path / "ovvg.json"), {
        "images": [{"id": 3, "file_name": "a.jpg", "height": 30, "width": 30}],
        "categories": CATEGORIES,
        "annotations": [
            {"id": 1, "image_id": 3, "bbox": [1, 1, 10, 10], "category_id": 1, "iscrowd": 0,
             "area": 100, "sentence": ["the person", "a standing man"]},
            {"id": 2, "image_id": 3, "bbox": [15, 15, 10, 10], "category_id": 18, "iscrowd": 0,
             "area": 100, "expression": "the dog"},
        ],
    })  # fmt: skip
    (record,) = load_ovvg_json(path, str(tmp_path))
    texts = [(e["text"], e["ann_id"], e["category_id"]) for e in record["expressions"]]
    assert texts == [("the person", 1, 0), ("a standing man", 1, 0), ("the dog", 2, 1)]
    (base,) = load_ovvg_json(path, str(tmp_path), base_only=True)
    assert [e["text"] for e in base["expressions"]] == ["the person", "a standing man"]
    name = unique_name("ovvg")
    register_ovvg(name, path, str(tmp_path), base_only=True)
    assert MetadataCatalog.get(name).evaluator_type == "grounding"
    assert len(DatasetCatalog.get(name)[0]["expressions"]) == 2


def test_base_only_refs_drop_novel_categories(tmp_path):
    path = write_json(str(tmp_path / "refexp.json"), {
        "images": [{"id": 1, "file_name": "x.png", "height": 20, "width": 20}],
        "categories": CATEGORIES,
        "annotations": [
            {"id": 5, "image_id": 1, "bbox": [0, 0, 5, 5], "category_id": 1, "iscrowd": 0,
             "area": 25},
            {"id": 6, "image_id": 1, "bbox": [9, 9, 5, 5], "category_id": 18, "iscrowd": 0,
             "area": 25},
        ],
        "refs": [{"id": 1, "image_id": 1, "ann_id": 5, "expression": "the person"},
                 {"id": 2, "image_id": 1, "ann_id": 6, "expression": "the dog"}],
    })  # fmt: skip
    assert len(load_refexp_json(path, "")[0]["expressions"]) == 2
    (record,) = load_refexp_json(path, "", base_only=True)
    assert [e["text"] for e in record["expressions"]] == ["the person"]


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="final_refcoco_testA.json"):
        load_mdetr_refexp_json(str(tmp_path / "final_refcoco_testA.json"), "")
