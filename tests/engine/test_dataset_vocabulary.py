"""Entry points train on the training dataset's classes, with its novel classes unseen."""

from __future__ import annotations

import torch

from ovvision.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from ovvision.engine import dataset_vocabulary, use_training_vocabulary
from ovvision.modeling import build_model
from ovvision.structures import ClassList

from ..data.test_open_vocab import _register_cup_lamp
from ..modeling.helpers import tiny_config


def test_a_custom_vocabulary_cannot_train_a_datasets_novel_class(tmp_path):
    name = "engine_test_cup_lamp_train"
    _register_cup_lamp(tmp_path, name)
    try:
        cfg = tiny_config(
            "VOCABULARY.CUSTOM", "cup,lamp",
            "DATASETS.TRAIN", f"('{name}',)",
            "DATALOADER.NUM_WORKERS", "0",
            "SOLVER.IMS_PER_BATCH", "2",
            "INPUT.MIN_SIZE_TRAIN", "(64,)",
            "INPUT.MAX_SIZE_TRAIN", "96",
            "SEED", "0",
            "MODEL.MASK_ON", "False",
        )  # fmt: skip
        torch.manual_seed(0)
        model = build_model(cfg)
        assert model.classes.seen.tolist() == [True, True]  # the vocabulary alone knows no split
        configured = use_training_vocabulary(model, cfg)
        assert configured.names == ["cup", "lamp"] and not configured.is_novel.any()
        assert model.class_names == ["cup", "lamp"]
        assert model.classes.seen.tolist() == [True, False]
        batch = next(iter(build_detection_train_loader(cfg)))
        lamp = model.class_names.index("lamp")
        assert all((x["instances"].gt_classes != lamp).all() for x in batch)
        losses = model.train()(batch)
        assert all(torch.isfinite(v) for v in losses.values())
        # evaluation of the same dataset takes its rows from the configured vocabulary
        evaluated = dataset_vocabulary(configured, name)
        assert evaluated.names == ["cup", "lamp"] and evaluated.is_novel.tolist() == [False, True]
        # a dataset with classes the vocabulary lacks is embedded from its class list
        MetadataCatalog.get("engine_test_other").set(thing_classes=["kettle"], novel_classes=[])
        assert dataset_vocabulary(configured, "engine_test_other") == ClassList(["kettle"])
    finally:
        for catalog in (DatasetCatalog, MetadataCatalog):
            for registered in (name, "engine_test_other"):
                if registered in catalog.list():
                    catalog.remove(registered)
