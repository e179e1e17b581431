"""Caption datasets for the caption losses: registered names, one caption sampled per step."""

from __future__ import annotations

import torch

from ovvision.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from ovvision.data.datasets import register_ov_shapes

from ._helpers import write_image

CAPTIONS = ["a red circle", "two squares", "a star above a ring"]


def _record(tmp_path, captions: list[str]) -> dict:
    path = write_image(str(tmp_path / "img.png"), 32, 24)
    return {"file_name": path, "image_id": 1, "height": 24, "width": 32, "annotations": [],
            "captions": list(captions)}  # fmt: skip


def test_training_draws_one_caption_per_step_and_inference_keeps_all(tmp_path):
    record = _record(tmp_path, CAPTIONS)
    train = DatasetMapper(is_train=True)
    torch.manual_seed(0)
    drawn = [train(record)["captions"] for _ in range(40)]
    assert all(len(c) == 1 and c[0] in CAPTIONS for c in drawn)
    assert {c[0] for c in drawn} == set(CAPTIONS)  # each is drawn at some step
    assert record["captions"] == CAPTIONS  # the dataset dict is untouched
    assert DatasetMapper(is_train=False)(record)["captions"] == CAPTIONS
    assert train(_record(tmp_path, []))["captions"] == []  # no caption: no caption loss
    assert train(_record(tmp_path, ["only one"]))["captions"] == ["only one"]


def test_caption_training_datasets_are_registered(ov_shapes_root, unique_name):
    meta = MetadataCatalog.get("coco_ov_train_captions")
    assert "coco_ov_train_captions" in DatasetCatalog.list()
    assert meta.json_file.endswith("instances_train2017_ov_base.json")
    assert meta.captions_json.endswith("captions_train2017.json")
    prefix = unique_name("ovs_cap")
    register_ov_shapes(ov_shapes_root, prefix=prefix)
    try:
        dicts = DatasetCatalog.get(f"{prefix}_train_captions")
        assert len(dicts) == 48 and all(len(d["captions"]) == 3 for d in dicts)
        base = MetadataCatalog.get(f"{prefix}_train_base")
        assert MetadataCatalog.get(f"{prefix}_train_captions").thing_classes == base.thing_classes
        out = DatasetMapper(is_train=True)(dicts[0])
        assert len(out["captions"]) == 1 and out["captions"][0] in dicts[0]["captions"]
    finally:
        for name in DatasetCatalog.list():
            if name.startswith(prefix):
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
