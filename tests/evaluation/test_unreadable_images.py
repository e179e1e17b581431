"""An unreadable val image stays in the score: its ground truth counts as missed."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from ovvision.config import get_cfg
from ovvision.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from ovvision.data.datasets import register_coco_ov_instances
from ovvision.evaluation import (
    COCOOpenVocabEvaluator,
    build_evaluator,
    inference_on_dataset,
    save_eval_results,
)
from tests.data._helpers import write_image

from ._fixtures import make_coco_gt, make_predictions, read_json, results_to_outputs, write_json


@pytest.fixture
def dataset_with_a_corrupt_image(tmp_path):
    """(name, gt, predictions, id and path of the corrupt image) of a registered 6-image set."""
    gt = make_coco_gt(5, num_images=6, crowd_prob=0.0)
    for image in gt["images"]:
        write_image(str(tmp_path / "images" / image["file_name"]), image["width"], image["height"])
    # The corrupt image is the one with the most ground truth, so dropping it would show.
    counts = {img["id"]: 0 for img in gt["images"]}
    for ann in gt["annotations"]:
        counts[ann["image_id"]] += 1
    bad_id = max(counts, key=counts.get)
    bad = next(img for img in gt["images"] if img["id"] == bad_id)
    bad_path = tmp_path / "images" / bad["file_name"]
    bad_path.write_bytes(bad_path.read_bytes()[:60])  # a truncated PNG
    name = f"unreadable_{uuid.uuid4().hex[:8]}"
    register_coco_ov_instances(name, write_json(tmp_path / "gt.json", gt), str(tmp_path / "images"))
    yield name, gt, make_predictions(gt, 5, miss_prob=0.0), bad_id, str(bad_path)
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_an_unreadable_image_counts_as_missed_and_is_reported(
    dataset_with_a_corrupt_image, tmp_path, caplog
):
    name, gt, predictions, bad_id, bad_path = dataset_with_a_corrupt_image
    outputs = results_to_outputs(gt, predictions, with_masks=False)
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.MIN_SIZE_TEST = 0
    evaluator = build_evaluator(cfg, name, str(tmp_path / "inference"))
    logger = logging.getLogger("ovvision")
    logger.addHandler(caplog.handler)  # whether or not a run's set-up stopped propagation
    try:
        results = inference_on_dataset(
            lambda batch: [outputs[d["image_id"]] for d in batch],
            build_detection_test_loader(cfg, name),
            evaluator,
        )
    finally:
        logger.removeHandler(caplog.handler)
    written = read_json(save_eval_results(results, tmp_path))

    # The same predictions scored with the corrupt image's detections empty, and with the image
    # dropped (what an evaluation that forgets it computes).
    reference = COCOOpenVocabEvaluator.from_dataset(name, max_dets_per_image=100)
    kept = [r for r in predictions if r["image_id"] != bad_id]
    all_ids = [img["id"] for img in gt["images"]]
    missed = reference.evaluate_results(kept, ("bbox",), all_ids)["bbox"]
    dropped = reference.evaluate_results(kept, ("bbox",), [i for i in all_ids if i != bad_id])

    assert results["bbox"]["AP"] == pytest.approx(missed["AP"], abs=1e-9)
    assert results["bbox"]["AP50"] == pytest.approx(missed["AP50"], abs=1e-9)
    assert results["bbox"]["AP"] < dropped["bbox"]["AP"] - 1
    assert written["bbox"]["num_images_unreadable"] == 1
    assert written["bbox"]["num_images"] == len(all_ids)
    logged = [r.getMessage() for r in caplog.records]
    assert any(bad_path in m and "1 of 6 images could not be read" in m for m in logged), logged


def test_loader_lists_the_unreadable_image_it_does_not_yield(dataset_with_a_corrupt_image):
    name, gt, _, bad_id, bad_path = dataset_with_a_corrupt_image
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 1  # the record crosses a worker process
    cfg.INPUT.MIN_SIZE_TEST = 0
    loader = build_detection_test_loader(cfg, name)
    ids = [batch[0]["image_id"] for batch in loader]
    assert sorted(ids + [bad_id]) == sorted(img["id"] for img in gt["images"])
    assert [(u.image_id, u.file_name) for u in loader.unreadable] == [(bad_id, bad_path)]
    assert os.path.basename(bad_path) in loader.unreadable[0].as_input()["file_name"]


def test_an_evaluator_that_cannot_score_unreadable_images_says_so():
    from ovvision.evaluation import DatasetEvaluator

    with pytest.raises(NotImplementedError, match="cannot score unreadable images.*'x.png'"):
        DatasetEvaluator().process_unreadable([{"image_id": 1, "file_name": "x.png"}])
