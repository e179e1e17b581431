"""DatasetCatalog / MetadataCatalog behaviour and the built-in registrations."""

from __future__ import annotations

import pytest

from ovvision.data import DatasetCatalog, MetadataCatalog
from ovvision.data.catalog import Metadata
from ovvision.data.datasets import register_all_builtin

BUILTIN = [
    "coco_captions_train", "coco_captions_val", "coco_ov_train_base", "coco_ov_val",
    "lvis_v1_train_base", "lvis_v1_val", "ov_shapes_captions_train", "ov_shapes_captions_val",
    "ov_shapes_pretrain_train", "ov_shapes_pretrain_val", "ov_shapes_refexp_train",
    "ov_shapes_refexp_val", "ov_shapes_train_all", "ov_shapes_train_base", "ov_shapes_val",
    "ov_shapes_refexp_train_base", "refcoco_train", "refcoco_val", "refcoco_testA",
    "refcoco_testB", "coco_ov_train_captions", "ov_shapes_train_captions",
]  # fmt: skip


def test_register_get_and_duplicates(unique_name):
    name = unique_name()
    DatasetCatalog.register(name, lambda: [{"image_id": 1}])
    assert name in DatasetCatalog and DatasetCatalog.get(name) == [{"image_id": 1}]
    with pytest.raises(ValueError, match="already registered"):
        DatasetCatalog.register(name, lambda: [])
    with pytest.raises(TypeError, match="callable"):
        DatasetCatalog.register(unique_name(), [1, 2])
    with pytest.raises(KeyError, match="not registered"):
        DatasetCatalog.get(unique_name())


def test_metadata_fields_conflicts_and_lazy_loading():
    calls = []

    def loader():
        calls.append(1)
        return {"thing_classes": ["a", "b"], "evaluator_type": "ignored, already set"}

    meta = Metadata("x").set(evaluator_type="coco_ov").set_lazy(loader)
    assert meta.evaluator_type == "coco_ov" and not calls  # eager fields do not trigger loading
    assert meta.thing_classes == ["a", "b"] and meta.get("thing_classes") == ["a", "b"]
    assert meta.evaluator_type == "coco_ov" and len(calls) == 1
    meta.evaluator_type = "coco_ov"  # same value: fine
    with pytest.raises(ValueError, match="evaluator_type"):
        meta.evaluator_type = "lvis_ov"
    with pytest.raises(AttributeError, match="no field 'stuff_classes'"):
        _ = meta.stuff_classes
    assert meta.get("stuff_classes", 3) == 3 and len(calls) == 1


def test_lazy_loader_errors_propagate_and_retry():
    attempts = []

    def loader():
        attempts.append(1)
        raise FileNotFoundError("missing.json")

    meta = Metadata("y").set_lazy(loader)
    for _ in range(2):
        with pytest.raises(FileNotFoundError, match="missing.json"):
            _ = meta.thing_classes
    assert len(attempts) == 2


def test_builtins_registered_without_files(tmp_path, monkeypatch):
    assert set(BUILTIN) <= set(DatasetCatalog.list())
    assert MetadataCatalog.get("ov_shapes_val").evaluator_type == "coco_ov"
    assert MetadataCatalog.get("lvis_v1_val").evaluator_type == "lvis_ov"
    # Re-registering under an empty root must work, and loading names the missing json.
    for name in BUILTIN:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    try:
        register_all_builtin(str(tmp_path))
        expected = str(tmp_path / "ov_shapes" / "annotations" / "instances_val.json")
        with pytest.raises(FileNotFoundError, match=expected):
            DatasetCatalog.get("ov_shapes_val")
        with pytest.raises(FileNotFoundError, match="lvis_v1_val.json"):
            _ = MetadataCatalog.get("lvis_v1_val").thing_classes
    finally:
        for name in BUILTIN:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_all_builtin()
