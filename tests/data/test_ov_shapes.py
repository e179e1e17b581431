"""The OV-Shapes generator: determinism, COCO validity, masks/boxes, splits, text, registration."""

from __future__ import annotations

import hashlib
import json
import os
import re
import runpy
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from ovvision.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from ovvision.data.datasets import register_ov_shapes
from ovvision.data.datasets.ov_shapes import (
    COLORS,
    DEFAULT_NOVEL_CLASSES,
    SHAPE_CLASSES,
    SIZES,
    generate_ov_shapes,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = [
    "instances_train_all.json", "instances_train_base.json", "instances_val.json",
    "captions_train.json", "captions_val.json", "refexp_train.json", "refexp_val.json",
    "pretrain_pairs_train.json", "pretrain_pairs_val.json",
]  # fmt: skip


def _load(root: str, name: str) -> dict:
    with open(os.path.join(root, "ov_shapes", "annotations", name)) as f:
        return json.load(f)


def _digests(folder: str) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_files_and_vocabulary(ov_shapes_root):
    assert sorted(os.listdir(os.path.join(ov_shapes_root, "ov_shapes", "annotations"))) == sorted(
        FILES
    )
    assert len(os.listdir(os.path.join(ov_shapes_root, "ov_shapes", "train"))) == 48
    assert len(os.listdir(os.path.join(ov_shapes_root, "ov_shapes", "val"))) == 30
    assert (
        len(SHAPE_CLASSES) >= 20
        and len(COLORS) >= 8
        and list(SIZES) == ["small", "medium", "large"]
    )
    assert len(DEFAULT_NOVEL_CLASSES) == len(SHAPE_CLASSES) // 4


def test_same_seed_gives_identical_bytes_whatever_the_workers(ov_shapes_root, tmp_path):
    reference = _digests(os.path.join(ov_shapes_root, "ov_shapes"))
    generate_ov_shapes(
        str(tmp_path / "a"), seed=0, num_train=48, num_val=30, workers=2, progress=False
    )
    assert _digests(str(tmp_path / "a")) == reference
    generate_ov_shapes(
        str(tmp_path / "b"), seed=1, num_train=48, num_val=30, workers=1, progress=False
    )
    other = _digests(str(tmp_path / "b"))
    assert other.keys() == reference.keys()
    assert sum(other[k] != reference[k] for k in reference) > 0.9 * len(reference)


@pytest.mark.parametrize("name", [f for f in FILES if not f.startswith("pretrain")])
def test_pycocotools_loads_every_json(ov_shapes_root, name):
    coco = COCO(os.path.join(ov_shapes_root, "ov_shapes", "annotations", name))
    assert len(coco.getImgIds()) in (48, 30) and len(coco.getAnnIds()) > 0


@pytest.mark.parametrize("name", ["instances_train_all.json", "instances_val.json"])
def test_masks_areas_and_tight_boxes(ov_shapes_root, name):
    data = _load(ov_shapes_root, name)
    images = {img["id"]: img for img in data["images"]}
    for ann in data["annotations"]:
        mask = mask_util.decode(ann["segmentation"])
        img = images[ann["image_id"]]
        assert mask.shape == (img["height"], img["width"])
        assert int(mask.sum()) == ann["area"] > 0
        ys, xs = np.nonzero(mask)
        tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["bbox"] == [int(v) for v in tight]
        assert ann["bbox"] == mask_util.toBbox(ann["segmentation"]).tolist()
        assert ann["iscrowd"] == 0 and set(ann["attributes"]) == {"color", "size"}
    # objects stay clearly distinguishable: none smaller than a few dozen pixels
    assert min(a["area"] for a in data["annotations"]) >= 30


def test_splits(ov_shapes_root):
    train_all = _load(ov_shapes_root, "instances_train_all.json")
    train_base = _load(ov_shapes_root, "instances_train_base.json")
    val = _load(ov_shapes_root, "instances_val.json")
    split = {c["name"]: c["split"] for c in val["categories"]}
    assert sorted(n for n, s in split.items() if s == "novel") == sorted(DEFAULT_NOVEL_CLASSES)
    novel_ids = {c["id"] for c in val["categories"] if c["split"] == "novel"}
    assert not any(a["category_id"] in novel_ids for a in train_base["annotations"])
    assert {c["id"] for c in train_base["categories"]}.isdisjoint(novel_ids)
    assert {c["id"] for c in train_base["novel_categories"]} == novel_ids
    assert train_base["images"] == train_all["images"]  # novel objects stay in the images
    base_anns = [a for a in train_all["annotations"] if a["category_id"] not in novel_ids]
    assert train_base["annotations"] == base_anns
    assert {a["category_id"] for a in val["annotations"]} == {c["id"] for c in val["categories"]}
    assert {a["category_id"] for a in train_all["annotations"]} == {
        c["id"] for c in val["categories"]
    }


def _parse_expression(text: str) -> dict:
    words = re.findall(r"[a-z-]+", text)
    classes = [c for c in SHAPE_CLASSES if c in words]
    assert len(classes) == 1, text
    sides = ("left", "right", "top", "bottom")
    position = next(
        (w.removesuffix("most") for w in words if w.removesuffix("most") in sides), None
    )
    return {
        "class": classes[0],
        "color": next((w for w in words if w in COLORS), None),
        "size": next((w for w in words if w in SIZES), None),
        "position": position,
    }


@pytest.mark.parametrize("split", ["train", "val"])
def test_every_expression_matches_exactly_one_object(ov_shapes_root, split):
    data = _load(ov_shapes_root, f"refexp_{split}.json")
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    anns_by_id = {a["id"]: a for a in data["annotations"]}
    for ref in data["refs"]:
        query = _parse_expression(ref["expression"])
        candidates = [
            a
            for a in by_image[ref["image_id"]]
            if names[a["category_id"]] == query["class"]
            and query["color"] in (None, a["attributes"]["color"])
            and query["size"] in (None, a["attributes"]["size"])
        ]
        if query["position"]:
            axis, sign = {"left": (0, 1), "right": (0, -1), "top": (1, 1), "bottom": (1, -1)}[
                query["position"]
            ]
            keyed = sorted(
                ((sign * (a["bbox"][axis] + a["bbox"][axis + 2] / 2), a) for a in candidates),
                key=lambda pair: pair[0],
            )
            assert len(keyed) >= 2 and keyed[1][0] - keyed[0][0] >= 6
            candidates = [keyed[0][1]]
        assert [a["id"] for a in candidates] == [ref["ann_id"]], ref
        assert ref["bbox"] == anns_by_id[ref["ann_id"]]["bbox"]
        assert ref["category_id"] == anns_by_id[ref["ann_id"]]["category_id"]
    assert len(data["refs"]) >= 0.8 * len(data["annotations"])


def test_captions_name_every_object(ov_shapes_root):
    captions = _load(ov_shapes_root, "captions_val.json")
    instances = _load(ov_shapes_root, "instances_val.json")
    names = {c["id"]: c["name"] for c in instances["categories"]}
    per_image = Counter(a["image_id"] for a in captions["annotations"])
    assert set(per_image.values()) == {3}
    first = {a["image_id"]: a["caption"] for a in captions["annotations"] if a["id"] % 10 == 0}
    for ann in instances["annotations"]:
        assert re.search(rf"\b{names[ann['category_id']]}\b", first[ann["image_id"]])


@pytest.mark.parametrize("split", ["train", "val"])
def test_pretrain_pairs(ov_shapes_root, split):
    data = _load(ov_shapes_root, f"pretrain_pairs_{split}.json")
    size = data["images"][0]["width"]
    objects = [p for p in data["pairs"] if p["kind"] == "object"]
    scenes = [p for p in data["pairs"] if p["kind"] == "scene"]
    assert {p["category_id"] for p in objects} == {c["id"] for c in data["categories"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    for pair in objects:
        x, y, w, h = pair["crop_box"]
        assert w == h > 0 and x >= 0 and y >= 0 and x + w <= size and y + h <= size
        assert re.search(rf"\b{names[pair['category_id']]}\b", pair["caption"])
    assert len({p["caption"] for p in objects}) > len(objects) / 3  # varied phrasing
    assert len(scenes) == 3 * len(data["images"]) and all(p["crop_box"] is None for p in scenes)
    assert len({p["id"] for p in data["pairs"]}) == len(data["pairs"])


def test_novel_flag_is_honoured(tmp_path):
    script = os.path.join(REPO, "tools", "make_ov_shapes.py")
    main = runpy.run_path(script, run_name="make")["main"]
    out = str(tmp_path / "ovs")
    main(["--output", out, "--num-train", "24", "--num-val", "24", "--novel", "circle,ring,star",
          "--workers", "1", "--no-progress"])  # fmt: skip
    with open(os.path.join(out, "annotations", "instances_train_base.json")) as f:
        base = json.load(f)
    assert sorted(c["name"] for c in base["novel_categories"]) == ["circle", "ring", "star"]
    assert {1, 6, 4}.isdisjoint({a["category_id"] for a in base["annotations"]})
    with pytest.raises(ValueError, match="'blob'"):
        main(["--output", out, "--novel", "circle,blob", "--num-train", "2", "--num-val", "2"])


def test_registered_datasets(ov_shapes_root, unique_name):
    prefix = unique_name("ovs")
    register_ov_shapes(ov_shapes_root, prefix=prefix)
    try:
        val_meta = MetadataCatalog.get(f"{prefix}_val")
        assert val_meta.evaluator_type == "coco_ov"
        assert val_meta.thing_classes == list(SHAPE_CLASSES)
        assert sorted(val_meta.novel_classes) == sorted(DEFAULT_NOVEL_CLASSES)
        base_meta = MetadataCatalog.get(f"{prefix}_train_base")
        assert base_meta.thing_classes == [
            c for c in SHAPE_CLASSES if c not in DEFAULT_NOVEL_CLASSES
        ]
        assert base_meta.base_classes == base_meta.thing_classes
        assert sorted(base_meta.novel_classes) == sorted(DEFAULT_NOVEL_CLASSES)
        assert MetadataCatalog.get(f"{prefix}_train_all").thing_classes == list(SHAPE_CLASSES)
        dicts = DatasetCatalog.get(f"{prefix}_train_base")
        assert len(dicts) == 48 and all(len(d["captions"]) == 3 for d in dicts)
        out = DatasetMapper(is_train=True, use_instance_mask=True)(dicts[0])
        assert out["image"].shape == (3, 128, 128)
        assert len(out["instances"]) == len(dicts[0]["annotations"])
        refs = DatasetCatalog.get(f"{prefix}_refexp_val")
        assert MetadataCatalog.get(f"{prefix}_refexp_val").evaluator_type == "grounding"
        assert sum(len(d["expressions"]) for d in refs) > 0
        pairs = DatasetCatalog.get(f"{prefix}_pretrain_train")
        assert MetadataCatalog.get(f"{prefix}_pretrain_train").thing_classes == list(SHAPE_CLASSES)
        first = pairs[0]
        assert os.path.isfile(first["file_name"]) and first["kind"] == "object"
        assert SHAPE_CLASSES[first["category_id"]] in first["caption"]
        captions = DatasetCatalog.get(f"{prefix}_captions_val")
        assert (
            len(captions) == 30
            and MetadataCatalog.get(f"{prefix}_captions_val").evaluator_type == "caption"
        )
    finally:
        for name in DatasetCatalog.list():
            if name.startswith(prefix):
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)


def test_visualize_data_tool(ov_shapes_root, tmp_path, unique_name):
    prefix = unique_name("vis")
    register_ov_shapes(ov_shapes_root, prefix=prefix)
    try:
        main = runpy.run_path(os.path.join(REPO, "tools", "visualize_data.py"), run_name="vis")[
            "main"
        ]
        out = str(tmp_path / "vis")
        main(["--dataset", f"{prefix}_val", "--num", "3", "--output", out])
        pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
        assert len(pngs) == 3
        from PIL import Image

        drawn = np.asarray(Image.open(os.path.join(out, pngs[0])))
        assert drawn.shape == (512, 512, 3)
        assert ((drawn == (255, 255, 0)).all(axis=-1)).sum() > 100  # yellow box outlines
        with open(os.path.join(out, "index.txt")) as f:
            assert len(f.read().strip().splitlines()) == 3
    finally:
        for name in DatasetCatalog.list():
            if name.startswith(prefix):
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
