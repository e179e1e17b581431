"""LVISOpenVocabEvaluator: federated semantics, r/c/f groups, caps, fixed AP, vs lvis-api."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ovvision.evaluation import LVISOpenVocabEvaluator
from ovvision.evaluation.coco_results import cap_detections_per_class

from ._fixtures import (
    make_lvis_gt,
    make_predictions,
    read_json,
    results_to_outputs,
    run_evaluator,
    write_json,
)
from ._references import lvis_api_eval, numpy_aliases_for_lvis

LVIS_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


@pytest.fixture
def lvis_case(tmp_path):
    gt = make_lvis_gt(3, num_images=14)
    return gt, write_json(tmp_path / "lvis.json", gt), make_predictions(gt, seed=8)


def test_shim_defines_np_float_only_inside_the_block():
    assert not hasattr(np, "float")
    with numpy_aliases_for_lvis():
        assert np.float is float
    assert not hasattr(np, "float")


def test_lvis_api_needs_the_shim(lvis_case):
    """If lvis stops using np.float, this fails and the shim can go."""
    from lvis import LVIS, LVISEval, LVISResults

    _, gt_path, results = lvis_case
    gt = LVIS(gt_path)
    evaluation = LVISEval(gt, LVISResults(gt, copy.deepcopy(results)), "bbox")
    evaluation.evaluate()
    with pytest.raises(AttributeError, match="float"):
        evaluation.accumulate()


@pytest.mark.parametrize("fixed_ap", [False, True])
def test_metrics_equal_lvis_api(lvis_case, tmp_path, fixed_ap):
    gt, gt_path, _ = lvis_case
    results = make_predictions(gt, seed=8, fp_per_image=12)
    outputs = results_to_outputs(gt, results)
    # small caps, so that they matter
    kwargs = {"fixed_ap": True, "max_dets_per_class": 20} if fixed_ap else {"max_dets_per_image": 6}
    evaluator = LVISOpenVocabEvaluator(gt_json=gt_path, **kwargs)
    metrics = run_evaluator(evaluator, gt, outputs)
    reference_input = results_to_coco(gt, outputs)
    if fixed_ap:
        reference_input, removed = cap_detections_per_class(reference_input, 20)
        assert removed > 0 and metrics["bbox"]["num_dets_over_class_cap"] == removed
        assert metrics["bbox"]["max_dets_per_image"] == -1
    else:
        assert metrics["bbox"]["num_dets_over_cap"] > 0
    for task in ("bbox", "segm"):
        ref = lvis_api_eval(gt_path, reference_input, task, max_dets=-1 if fixed_ap else 6)
        for key in LVIS_KEYS:
            assert metrics[task][key] == pytest.approx(100 * ref.results[key], abs=1e-2), key
        ar_key = f"AR@{20 if fixed_ap else 6}"
        assert metrics[task][ar_key] == pytest.approx(100 * ref.results["AR@300"], abs=1e-2)
        assert 5 < metrics[task]["AP"] < 95


def results_to_coco(gt, outputs):
    """The COCO results our evaluator writes for ``outputs`` (no cap)."""
    from ovvision.evaluation.coco_results import instances_to_coco_results

    to_dataset = dict(enumerate(sorted(c["id"] for c in gt["categories"])))
    results = []
    for image in gt["images"]:
        mine, _ = instances_to_coco_results(
            outputs[image["id"]]["instances"], image["id"], to_dataset
        )
        results.extend(mine)
    return results


def _hand_made_lvis(tmp_path):
    """Two images, 100x100; class 1 (r) and 2 (c) and 3 (f). Image 1: one class-1 object,
    class 2 verified absent, class 3 unverified. Image 2: one class-3 object, not exhaustively
    annotated; class 1 verified absent."""
    box = [10.0, 10.0, 40.0, 40.0]
    poly = [[10.0, 10.0, 50.0, 10.0, 50.0, 50.0, 10.0, 50.0]]
    gt = {
        "images": [
            {"id": 1, "height": 100, "width": 100, "neg_category_ids": [2],
             "not_exhaustive_category_ids": []},
            {"id": 2, "height": 100, "width": 100, "neg_category_ids": [1],
             "not_exhaustive_category_ids": [3]},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": box, "area": 1600.0,
             "segmentation": poly},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": box, "area": 1600.0,
             "segmentation": poly},
        ],
        "categories": [{"id": 1, "name": "a", "frequency": "r"},
                       {"id": 2, "name": "b", "frequency": "c"},
                       {"id": 3, "name": "c", "frequency": "f"}],
    }  # fmt: skip
    return write_json(tmp_path / "hand.json", gt)


def _det(image_id, cat, box, score):
    return {"image_id": image_id, "category_id": cat, "bbox": box, "score": score}


TRUE_1 = _det(1, 1, [10.0, 10.0, 40.0, 40.0], 0.5)
TRUE_3 = _det(2, 3, [10.0, 10.0, 40.0, 40.0], 0.5)
ELSEWHERE = [60.0, 60.0, 30.0, 30.0]


@pytest.mark.parametrize(
    "extra, changes_ap",
    [
        (_det(1, 3, ELSEWHERE, 0.9), False),  # class 3 unverified in image 1: ignored
        (_det(2, 3, ELSEWHERE, 0.9), False),  # class 3 not exhaustive in image 2: not a FP
        (_det(2, 1, ELSEWHERE, 0.9), True),  # class 1 verified absent in image 2: a FP
        (_det(1, 1, ELSEWHERE, 0.9), True),  # class 1 exhaustive in image 1: a FP
    ],
)
def test_federated_semantics(tmp_path, extra, changes_ap):
    gt_path = _hand_made_lvis(tmp_path)
    evaluator = LVISOpenVocabEvaluator(gt_json=gt_path)
    base = evaluator.evaluate_results([TRUE_1, TRUE_3])["bbox"]
    assert base["AP"] == pytest.approx(100.0)
    with_extra = evaluator.evaluate_results([TRUE_1, TRUE_3, extra])["bbox"]
    ref = lvis_api_eval(gt_path, [TRUE_1, TRUE_3, extra], "bbox")
    assert with_extra["AP"] == pytest.approx(100 * ref.results["AP"], abs=1e-2)
    assert (with_extra["AP"] < 99.0) == changes_ap


def test_frequency_groups(tmp_path):
    """Class 1 (r) perfect, class 3 (f) missed, class 2 (c) has no ground truth."""
    gt_path = _hand_made_lvis(tmp_path)
    metrics = LVISOpenVocabEvaluator(gt_json=gt_path).evaluate_results([TRUE_1])["bbox"]
    assert metrics["APr"] == pytest.approx(100.0)
    assert metrics["APf"] == pytest.approx(0.0)
    assert np.isnan(metrics["APc"])
    assert metrics["AP"] == pytest.approx(50.0)
    assert metrics["num_classes_without_gt"] == 1


def test_novel_and_base_ap(tmp_path):
    gt_path = _hand_made_lvis(tmp_path)
    evaluator = LVISOpenVocabEvaluator(gt_json=gt_path, novel_classes=["a"])
    metrics = evaluator.evaluate_results([TRUE_1])["bbox"]
    assert metrics["AP-novel"] == pytest.approx(100.0)
    assert metrics["AP-base"] == pytest.approx(0.0)  # "b" has no ground truth: left out
    assert (metrics["num_classes_novel"], metrics["num_classes_base"]) == (1, 1)


def test_default_cap_is_300_per_image(tmp_path):
    gt_path = _hand_made_lvis(tmp_path)
    many = [_det(1, 1, [10.0, 10.0, 40.0, 40.0], s) for s in np.linspace(0.1, 0.9, 350)]
    evaluator = LVISOpenVocabEvaluator(gt_json=gt_path, output_dir=tmp_path)
    metrics = evaluator.evaluate_results(many)["bbox"]
    assert (metrics["max_dets_per_image"], metrics["num_dets_over_cap"]) == (300, 50)
    assert len(read_json(tmp_path / "lvis_instances_results.json")) == 300


def test_coco_json_is_rejected(tmp_path):
    gt = make_lvis_gt(1, num_images=2)
    for image in gt["images"]:
        del image["neg_category_ids"]
    with pytest.raises(ValueError, match="neg_category_ids"):
        LVISOpenVocabEvaluator(gt_json=write_json(tmp_path / "gt.json", gt))


def test_built_from_config_and_a_registered_dataset(tmp_path):
    from ovvision.config import get_cfg
    from ovvision.data.catalog import MetadataCatalog
    from ovvision.evaluation import build_evaluator

    gt_path = _hand_made_lvis(tmp_path)
    name = f"test_eval_lvis_ov_{tmp_path.name}"
    MetadataCatalog.get(name).set(json_file=gt_path, evaluator_type="lvis_ov")
    cfg = get_cfg()
    cfg.TEST.LVIS_FIXED_AP = True
    try:
        evaluator = build_evaluator(cfg, name)
    finally:
        MetadataCatalog.remove(name)
    assert isinstance(evaluator, LVISOpenVocabEvaluator)
    metrics = evaluator.evaluate_results([TRUE_1, TRUE_3])["bbox"]
    assert metrics["AP"] == pytest.approx(100.0)
    assert (metrics["max_dets_per_image"], metrics["max_dets_per_class"]) == (-1, 10000)
