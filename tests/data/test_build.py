"""Dataset concatenation/filtering and the train/test loaders."""

from __future__ import annotations

import itertools
import json

import pytest

from ovvision.config import get_cfg
from ovvision.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
    register_coco_ov_instances,
)
from ovvision.engine import launch
from ovvision.utils import comm

from ._helpers import write_image, write_json


def _record(path: str, image_id: int, width: int, height: int, n_boxes: int) -> dict:
    anns = [
        {
            "id": 10 * image_id + k,
            "bbox": [1.0, 1.0, 4.0, 4.0],
            "segmentation": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]],
            "category_id": k % 2,
            "iscrowd": 0,
        }
        for k in range(n_boxes)
    ]
    return {
        "file_name": path,
        "image_id": image_id,
        "height": height,
        "width": width,
        "annotations": anns,
    }


@pytest.fixture
def toy(tmp_path, unique_name):
    """A registered dataset of 10 images: landscape and portrait, one crowd-only, one empty."""
    records = []
    for i in range(10):
        width, height = (24, 16) if i % 2 else (16, 24)
        path = write_image(str(tmp_path / f"{i}.png"), width, height, seed=i)
        records.append(_record(path, i, width, height, n_boxes=1 + i % 3))
    records[8]["annotations"] = []
    records[9]["annotations"][0]["iscrowd"] = 1
    records[9]["annotations"] = records[9]["annotations"][:1]
    name = unique_name()
    DatasetCatalog.register(name, lambda: [dict(r) for r in records])
    MetadataCatalog.get(name).set(thing_classes=["a", "b"])
    return name


def _cfg(name: str):
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (name,)
    cfg.SOLVER.IMS_PER_BATCH = 3
    cfg.SEED = 11
    cfg.INPUT.MIN_SIZE_TRAIN = (16,)
    cfg.INPUT.MAX_SIZE_TRAIN = 100
    cfg.INPUT.MIN_SIZE_TEST = 0
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def test_get_detection_dataset_dicts_filters_and_checks(toy, unique_name, caplog):
    assert len(get_detection_dataset_dicts(toy, filter_empty=False)) == 10
    with caplog.at_level("WARNING"):
        kept = get_detection_dataset_dicts([toy])
    assert [d["image_id"] for d in kept] == list(range(8))  # empty and crowd-only images gone
    assert any("Removed 2 of 10 images" in r.getMessage() for r in caplog.records)
    other = unique_name()
    DatasetCatalog.register(other, lambda: DatasetCatalog.get(toy))
    MetadataCatalog.get(other).set(thing_classes=["a", "c"])
    with pytest.raises(ValueError, match="different thing_classes"):
        get_detection_dataset_dicts([toy, other])
    with pytest.raises(ValueError, match="No dataset names"):
        get_detection_dataset_dicts([])
    empty = unique_name()
    DatasetCatalog.register(empty, list)
    with pytest.raises(ValueError, match=f"'{empty}' is empty"):
        get_detection_dataset_dicts(empty)


def test_train_loader_batches_forever_grouped_and_reproducibly(toy):
    cfg = _cfg(toy)
    batches = list(itertools.islice(build_detection_train_loader(cfg), 12))  # > 4 epochs
    assert all(len(b) == 3 for b in batches)
    for batch in batches:
        shapes = {tuple(d["image"].shape) for d in batch}
        assert len(shapes) == 1  # landscape and portrait never share a batch
        assert all(len(d["instances"]) > 0 for d in batch)
    seen = {d["image_id"] for b in batches for d in b}
    assert seen == set(range(8))
    again = list(itertools.islice(build_detection_train_loader(cfg), 12))
    ids = [[d["image_id"] for d in b] for b in batches]
    assert ids == [[d["image_id"] for d in b] for b in again]


def test_train_loader_with_workers_matches_itself(toy):
    cfg = _cfg(toy)
    cfg.DATALOADER.NUM_WORKERS = 2
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = False
    cfg.INPUT.RANDOM_FLIP = "horizontal"
    runs = []
    for _ in range(2):
        batches = itertools.islice(build_detection_train_loader(cfg), 6)
        runs.append(
            [[(d["image_id"], d["instances"].gt_boxes.tensor.tolist()) for d in b] for b in batches]
        )
    assert runs[0] == runs[1]
    assert all(len(b) == 3 for b in runs[0])


def test_train_loader_batch_size_must_divide(toy):
    cfg = _cfg(toy)
    cfg.SOLVER.IMS_PER_BATCH = 0
    with pytest.raises(ValueError, match="IMS_PER_BATCH"):
        build_detection_train_loader(cfg)


def test_train_loader_skips_unreadable_images(toy, tmp_path):
    dicts = get_detection_dataset_dicts(toy)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    dicts[0]["file_name"] = str(bad)
    cfg = _cfg(toy)
    batches = list(itertools.islice(build_detection_train_loader(cfg, dataset=dicts), 8))
    assert 0 not in {d["image_id"] for b in batches for d in b}
    cfg.DATALOADER.SKIP_UNREADABLE_IMAGES = False
    with pytest.raises(OSError, match="bad.png"):
        list(itertools.islice(build_detection_train_loader(cfg, dataset=dicts), 8))


def test_train_loader_refuses_an_all_unreadable_dataset(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("no")
    dicts = [_record(str(bad), i, 8, 8, 1) for i in range(3)]
    with pytest.raises(RuntimeError, match="unreadable images in a row"):
        next(iter(build_detection_train_loader(_cfg("unused"), dataset=dicts)))


def test_repeat_factor_sampler_from_config(toy):
    cfg = _cfg(toy)
    cfg.DATALOADER.SAMPLER_TRAIN = "RepeatFactorTrainingSampler"
    cfg.DATALOADER.REPEAT_THRESHOLD = 0.9
    batches = list(itertools.islice(build_detection_train_loader(cfg), 4))
    assert all(len(b) == 3 for b in batches)
    cfg.DATALOADER.SAMPLER_TRAIN = "Nope"
    with pytest.raises(ValueError, match="SAMPLER_TRAIN"):
        build_detection_train_loader(cfg)


def test_test_loader_gives_each_image_once_and_skips_bad_files(toy, tmp_path, unique_name):
    cfg = _cfg(toy)
    loader = build_detection_test_loader(cfg, toy)
    batches = list(loader)
    assert len(loader) == 10 and all(len(b) == 1 for b in batches)
    assert [b[0]["image_id"] for b in batches] == list(range(10))  # no filtering at test time
    assert "instances" not in batches[0][0]
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    broken = unique_name()
    DatasetCatalog.register(
        broken,
        lambda: [
            {**d, "file_name": str(bad)} if d["image_id"] == 4 else d
            for d in DatasetCatalog.get(toy)
        ],
    )
    ids = [b[0]["image_id"] for b in build_detection_test_loader(cfg, broken)]
    assert ids == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def _collect_test_ids(json_file: str, image_root: str, output: str) -> None:
    """In each process: the image ids its test loader yields, gathered on rank 0."""
    register_coco_ov_instances("ddp_fixture", json_file, image_root)
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TEST = 0
    cfg.DATALOADER.NUM_WORKERS = 0
    ids = [b[0]["image_id"] for b in build_detection_test_loader(cfg, "ddp_fixture")]
    gathered = comm.all_gather(ids)
    if comm.is_main_process():
        with open(output, "w") as f:
            json.dump(gathered, f)


@pytest.mark.slow  # three spawned processes each import torch: slow on a busy machine
def test_test_loader_shards_every_image_once_across_gloo_processes(tmp_path):
    images = []
    for i in range(1, 8):
        write_image(str(tmp_path / f"{i}.png"), 12, 10, seed=i)
        images.append({"id": i, "file_name": f"{i}.png", "height": 10, "width": 12})
    json_file = write_json(
        str(tmp_path / "instances.json"),
        {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]},
    )
    output = str(tmp_path / "ids.json")
    launch(
        _collect_test_ids,
        num_gpus_per_machine=3,
        args=(json_file, str(tmp_path), output),
        backend="gloo",
    )
    with open(output) as f:
        per_rank = json.load(f)
    assert per_rank == [[1, 2, 3], [4, 5], [6, 7]]
