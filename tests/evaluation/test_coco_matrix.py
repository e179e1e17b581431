"""faster-coco-eval (our evaluation path) equals pycocotools within 1e-4 on a matrix of cases."""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import pytest
from pycocotools.coco import COCO as PyCOCO

from ovvision.evaluation.coco_metrics import load_coco_gt, run_coco_eval, summary_metrics

from ._fixtures import make_coco_gt, make_predictions, write_json
from ._references import reference_eval

ATOL = 1e-4
# pycocotools' stats[0..11] in the order of summary_metrics' keys for maxDets (1, 10, 100).
STATS_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR@1", "AR@10", "AR@100")
STATS_KEYS += ("ARs@100", "ARm@100", "ARl@100")


def assert_same(ours, ref):
    np.testing.assert_allclose(ours.eval["precision"], ref.eval["precision"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours.eval["recall"], ref.eval["recall"], atol=ATOL, rtol=0)
    mine, theirs = summary_metrics(ours), summary_metrics(ref)
    assert mine.keys() == theirs.keys()
    for key in mine:
        if math.isnan(theirs[key]):
            assert math.isnan(mine[key]), key
        else:
            assert mine[key] == pytest.approx(theirs[key], abs=100 * ATOL), key


def _case(name, tmp_path):
    """(gt_path, results, kwargs) of one matrix case."""
    kwargs = {}
    if name == "empty_gt":
        gt = make_coco_gt(3, max_per_image=0)
        results = make_predictions(make_coco_gt(3), seed=4)
    else:
        crowd = {"crowd_gt": 0.5, "no_crowd": 0.0}.get(name, 0.15)
        gt = make_coco_gt(1, num_images=12, crowd_prob=crowd)
        results = [] if name == "empty_detections" else make_predictions(gt, seed=2)
    if name == "maxdets_1":
        kwargs["max_dets"] = (1,)
    if name == "image_subset":
        kwargs["img_ids"] = [img["id"] for img in gt["images"][::2]]
    return write_json(tmp_path / "gt.json", gt), results, kwargs


CASES = ("default", "empty_detections", "empty_gt", "maxdets_1", "crowd_gt", "no_crowd")
CASES += ("image_subset",)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("case", CASES)
def test_matches_pycocotools(case, iou_type, tmp_path):
    gt_path, results, kwargs = _case(case, tmp_path)
    max_dets = kwargs.get("max_dets", (1, 10, 100))
    ours = run_coco_eval(
        load_coco_gt(gt_path), results, iou_type, max_dets, img_ids=kwargs.get("img_ids")
    )
    ref = reference_eval(gt_path, results, iou_type, max_dets, kwargs.get("img_ids"))
    assert_same(ours, ref)
    if list(max_dets) == [1, 10, 100]:  # also against pycocotools' own summary
        mine = summary_metrics(ours)
        for key, stat in zip(STATS_KEYS, ref.stats):
            expected = math.nan if stat == -1 else 100 * stat
            if math.isnan(expected):
                assert math.isnan(mine[key]), key
            else:
                assert mine[key] == pytest.approx(expected, abs=100 * ATOL), key


def test_matrix_cases_are_not_trivial(tmp_path):
    """The fixtures exercise what the matrix claims: non-contiguous ids, crowd regions, every
    area range, and AP strictly between 0 and 100."""
    gt_path, results, _ = _case("crowd_gt", tmp_path)
    gt = load_coco_gt(gt_path)
    assert sorted(gt.cats) == [1, 3, 7, 90]
    anns = gt.dataset["annotations"]
    assert any(a["iscrowd"] for a in anns) and not all(a["iscrowd"] for a in anns)
    areas = [a["area"] for a in anns if not a["iscrowd"]]
    assert min(areas) < 32**2 and max(areas) > 96**2
    metrics = summary_metrics(run_coco_eval(gt, results, "segm", (1, 10, 100)))
    assert 5 < metrics["AP"] < 95


def test_results_on_unknown_image_raise_like_pycocotools(tmp_path):
    gt_path, results, _ = _case("default", tmp_path)
    results = results + [dict(results[0], image_id=123456)]
    with pytest.raises(AssertionError), contextlib.redirect_stdout(io.StringIO()):
        PyCOCO(gt_path).loadRes(copy.deepcopy(results))
    with pytest.raises(AssertionError):
        run_coco_eval(load_coco_gt(gt_path), results, "bbox", (1, 10, 100))


def test_inputs_are_not_modified(tmp_path):
    gt_path, results, _ = _case("default", tmp_path)
    before = copy.deepcopy(results)
    run_coco_eval(load_coco_gt(gt_path), results, "segm", (1, 10, 100))
    assert results == before
