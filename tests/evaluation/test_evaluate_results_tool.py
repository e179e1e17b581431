"""tools/evaluate_results.py on fixtures: CLI, class splits, dataset names, LVIS, errors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from ovvision.evaluation import COCOOpenVocabEvaluator, LVISOpenVocabEvaluator

from .._tools import load_tool
from ._fixtures import make_coco_gt, make_lvis_gt, make_predictions, read_json, write_json

TOOL = Path(__file__).resolve().parents[2] / "tools" / "evaluate_results.py"
SPLITS = {1: "base", 3: "base", 7: "novel", 90: "novel"}


def _tool():
    return load_tool("evaluate_results")


@pytest.fixture
def coco_case(tmp_path):
    gt = make_coco_gt(21, num_images=10, splits=SPLITS)
    results = make_predictions(gt, seed=22)
    return gt, write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "dets.json", results)


def same_metrics(a, b):
    assert a.keys() == b.keys()
    for task in a:
        assert a[task].keys() == b[task].keys()
        for key, value in a[task].items():
            other = b[task][key]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert other is None or math.isnan(other), (task, key)
            else:
                assert value == pytest.approx(other, abs=1e-9), (task, key)


def test_command_line_with_split_field(coco_case, tmp_path):
    _, gt_path, dets_path = coco_case
    out = tmp_path / "metrics.json"
    cmd = [sys.executable, str(TOOL), "--gt-json", gt_path, "--results", dets_path]
    proc = subprocess.run([*cmd, "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "bbox: AP=" in proc.stdout and "AP50-novel=" in proc.stdout
    written = read_json(out)
    assert set(written) == {"bbox", "segm"}
    expected = COCOOpenVocabEvaluator(gt_json=gt_path).evaluate_results(
        read_json(dets_path), ("bbox", "segm")
    )
    same_metrics(written, expected)
    assert written["bbox"]["num_classes_novel"] == 2


def test_command_line_reports_a_missing_file(tmp_path):
    cmd = [sys.executable, str(TOOL), "--gt-json", str(tmp_path / "nope.json")]
    proc = subprocess.run(
        [*cmd, "--results", str(tmp_path / "dets.json")], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "dets.json" in proc.stderr and "Traceback" not in proc.stderr


def test_novel_classes_flag_and_iou_type(coco_case, tmp_path):
    gt, gt_path, dets_path = coco_case
    for category in gt["categories"]:
        del category["split"]
    plain_gt = write_json(tmp_path / "plain.json", gt)
    tool = _tool()
    args = ["--results", dets_path, "--iou-type", "segm"]
    from_flag = tool.main(["--gt-json", plain_gt, "--novel-classes", "class_7, class_90", *args])
    from_field = tool.main(["--gt-json", gt_path, *args])
    assert set(from_flag) == {"segm"}
    same_metrics(from_flag, from_field)
    without_split = tool.main(["--gt-json", plain_gt, *args])
    assert "AP50-novel" not in without_split["segm"]


def test_registered_dataset(coco_case, tmp_path):
    from ovvision.data.catalog import MetadataCatalog

    _, gt_path, dets_path = coco_case
    name = f"test_evaluate_results_{tmp_path.name}"
    MetadataCatalog.get(name).set(
        json_file=gt_path, evaluator_type="coco_ov", novel_classes=["class_90"]
    )
    try:
        metrics = _tool().main(["--dataset", name, "--results", dets_path])
    finally:
        MetadataCatalog.remove(name)
    expected = COCOOpenVocabEvaluator(gt_json=gt_path, novel_classes=["class_90"])
    same_metrics(metrics, expected.evaluate_results(read_json(dets_path), ("bbox", "segm")))


def test_lvis_json_gets_lvis_evaluation_and_fixed_ap(tmp_path):
    gt = make_lvis_gt(4, num_images=8)
    gt_path = write_json(tmp_path / "lvis.json", gt)
    dets_path = write_json(tmp_path / "dets.json", make_predictions(gt, seed=5))
    tool = _tool()
    metrics = tool.main(["--gt-json", gt_path, "--results", dets_path, "--fixed-ap"])
    expected = LVISOpenVocabEvaluator(gt_json=gt_path, fixed_ap=True).evaluate_results(
        read_json(dets_path), ("bbox", "segm")
    )
    same_metrics(metrics, expected)
    assert "APr" in metrics["bbox"] and metrics["bbox"]["max_dets_per_image"] == -1


def test_bad_inputs_raise_with_names(coco_case, tmp_path):
    _, gt_path, _ = coco_case
    tool = _tool()
    not_a_list = write_json(tmp_path / "dict.json", {"image_id": 1})
    with pytest.raises(ValueError, match="dict.json"):
        tool.main(["--gt-json", gt_path, "--results", not_a_list])
    unknown = write_json(
        tmp_path / "unknown.json",
        [{"image_id": 1000, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 0.5}],
    )
    with pytest.raises(ValueError, match=r"category ids \[2\]"):
        tool.main(["--gt-json", gt_path, "--results", unknown])
    with pytest.raises(ValueError, match="LVIS"):
        tool.main(["--gt-json", gt_path, "--results", unknown, "--fixed-ap"])


def test_empty_results_give_zero(coco_case, tmp_path):
    _, gt_path, _ = coco_case
    empty = write_json(tmp_path / "empty.json", [])
    metrics = _tool().main(["--gt-json", gt_path, "--results", empty])
    assert set(metrics) == {"bbox"} and metrics["bbox"]["AP"] == 0.0
