"""Evaluation reports (ovvision.reports): the numbers are the evaluator's, the figures open."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ovvision.evaluation import COCOOpenVocabEvaluator, LVISOpenVocabEvaluator
from ovvision.evaluation.coco_metrics import load_coco_gt, per_class_ap, run_coco_eval
from ovvision.evaluation.grounding import GroundingEvaluator, GroundingTarget
from ovvision.reports import (
    count_confusions,
    match_images,
    missed_objects,
    pr_curve,
    write_detection_report,
    write_evaluator_report,
)
from ovvision.reports.figures import image_grid_size, per_class_ap_size
from ovvision.structures import Boxes, Instances

from .._tools import load_tool
from ._fixtures import make_coco_gt, make_lvis_gt, make_predictions, read_json, write_json

TOOL = Path(__file__).resolve().parents[2] / "tools" / "evaluate_results.py"

SPLITS = {1: "base", 3: "base", 7: "novel", 90: "novel"}


@pytest.fixture
def evaluated(tmp_path):
    """An evaluator run over a random ground truth with a base/novel split, its images on disk."""
    gt = make_coco_gt(seed=5, num_images=10, splits=SPLITS)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for image in gt["images"]:
        pixels = rng.integers(0, 255, (image["height"], image["width"], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / image["file_name"])
    gt_json = write_json(tmp_path / "gt.json", gt)
    results = make_predictions(gt, seed=6)
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_json)
    metrics = evaluator.evaluate_results(results, ("bbox", "segm"))
    return gt_json, results, evaluator, metrics, images


def _report_rows(text: str, task: str) -> dict[str, tuple[str, float, float]]:
    """class -> (split, AP, AP50) from the per-class table of ``task`` in report.md."""
    section = text.split(f"## {task}: per-class AP")[1].split("\n## ")[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"\d+", cells[2]):
            values = [math.nan if c == "–" else float(c) for c in cells[3:]]
            rows[cells[0]] = (cells[1], values[0], values[1])
    return rows


def test_report_per_class_ap_is_the_evaluators(evaluated, tmp_path):
    gt_json, results, evaluator, metrics, images = evaluated
    path = write_detection_report(
        evaluator.last_snapshot, metrics, tmp_path / "report", image_root=images
    )
    text = Path(path).read_text(encoding="utf-8")
    gt = load_coco_gt(gt_json)
    for task in ("bbox", "segm"):
        # an independent evaluation of the same results, per class
        expected = per_class_ap(run_coco_eval(gt, results, task, [1, 10, 100]))
        rows = _report_rows(text, task)
        assert len(rows) == len(expected)
        for cat_id, (ap, ap50) in expected.items():
            split, shown_ap, shown_ap50 = rows[f"class_{cat_id}"]
            assert split == SPLITS[cat_id]
            for shown, value in ((shown_ap, ap), (shown_ap50, ap50)):
                assert (math.isnan(shown) and math.isnan(value)) or shown == round(value, 2)
        # the base and novel means of the rows are the evaluator's AP50-base / AP50-novel
        for split in ("base", "novel"):
            ids = [c for c, s in SPLITS.items() if s == split and not math.isnan(expected[c][1])]
            mean = float(np.mean([expected[c][1] for c in ids]))
            assert mean == pytest.approx(metrics[task][f"AP50-{split}"], abs=1e-9)
            # the curve is the evaluator's precision array: its mean is the split's AP50
            recall, precision = pr_curve(evaluator.last_snapshot.tasks[task], ids)
            assert len(recall) == 101
            assert float(np.mean(precision)) * 100 == pytest.approx(mean, abs=1e-9)
        assert f"| {task} | {metrics[task]['AP']:.2f} | {metrics[task]['AP50']:.2f} |" in text


def test_report_figures_open_with_their_sizes(evaluated, tmp_path):
    _, _, evaluator, metrics, images = evaluated
    out = tmp_path / "report"
    write_detection_report(evaluator.last_snapshot, metrics, out, image_root=images)
    num_classes = 4
    with Image.open(out / "per_class_ap50_bbox.png") as img:
        assert img.size == per_class_ap_size(num_classes)
    with Image.open(out / "pr_curves_segm.png") as img:
        assert img.size == (640, 480)
    matches = match_images(evaluator.last_snapshot.gt_dataset, evaluator.last_snapshot.results)
    num_missed_images = len(missed_objects(matches, [7, 90]))
    assert num_missed_images > 0
    with Image.open(out / "missed_novel.png") as img:
        img.load()
        assert img.size == image_grid_size(min(8, num_missed_images))
    text = (out / "report.md").read_text()
    for name in ("per_class_ap50_bbox.png", "pr_curves_bbox.png", "missed_novel.png"):
        assert f"({name})" in text


def _box(image_id, cat_id, bbox, score=0.9, ann_id=None):
    item = {"image_id": image_id, "category_id": cat_id, "bbox": bbox, "score": score}
    if ann_id is not None:
        item.update(id=ann_id, iscrowd=0, area=bbox[2] * bbox[3])
    return item


def test_confusions_and_misses_on_a_hand_made_case():
    """Image 1: a cat and a dog; a 'dog' detection sits on the cat, a 'cat' one on the dog, and
    a second 'dog' one on the dog. Image 2: a bird that only a low-score detection finds."""
    cat, dog, bird = 1, 2, 3
    gt = {
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            _box(1, cat, [0, 0, 10, 10], ann_id=1),
            _box(1, dog, [50, 50, 10, 10], ann_id=2),
            _box(2, bird, [0, 0, 20, 20], ann_id=3),
        ],
    }
    results = [
        _box(1, dog, [1, 1, 10, 10], 0.9),  # on the cat (IoU 0.68): a dog-for-cat confusion
        _box(1, cat, [50, 50, 10, 10], 0.8),  # on the dog: cat-for-dog
        _box(1, dog, [51, 50, 10, 10], 0.7),  # finds the dog
        _box(1, dog, [30, 30, 5, 5], 0.9),  # on nothing: neither
        _box(2, bird, [0, 0, 20, 20], 0.1),  # below min_score: the bird counts as missed
    ]
    matches = match_images(gt, results, min_score=0.3)
    assert count_confusions(matches) == {(dog, cat): 1, (cat, dog): 1}
    assert matches[1].gt_matched == [False, True]
    missed = missed_objects(matches, [cat, bird])
    assert {i: [a["id"] for a in v] for i, v in missed.items()} == {1: [1], 2: [3]}
    assert missed_objects(match_images(gt, results, min_score=0.05), [bird]) == {}


def test_report_of_an_evaluation_without_detections(tmp_path):
    gt = make_coco_gt(seed=2, num_images=4, splits=SPLITS)
    evaluator = COCOOpenVocabEvaluator(gt_json=write_json(tmp_path / "gt.json", gt))
    metrics = evaluator.evaluate_results([], ("bbox",))
    path = write_detection_report(evaluator.last_snapshot, metrics, tmp_path / "report")
    text = Path(path).read_text(encoding="utf-8")
    assert "The model made no detections" in text
    assert "No confusions." in text
    rows = _report_rows(text, "bbox")
    assert rows and all(math.isnan(ap50) or ap50 == 0.0 for _, _, ap50 in rows.values())
    with Image.open(tmp_path / "report" / "pr_curves_bbox.png") as img:
        assert img.size == (640, 480)


def test_evaluate_results_tool_writes_a_report_with_the_json_numbers(tmp_path):
    tool = load_tool("evaluate_results")
    gt = make_coco_gt(seed=8, num_images=6, splits=SPLITS)
    gt_json = write_json(tmp_path / "gt.json", gt)
    dets = write_json(tmp_path / "dets.json", make_predictions(gt, seed=9))
    out = tmp_path / "report"
    tool.main(["--gt-json", gt_json, "--results", dets, "--output", str(tmp_path / "m.json"),
               "--report", str(out)])  # fmt: skip
    written = read_json(tmp_path / "m.json")
    text = (out / "report.md").read_text(encoding="utf-8")
    for task in ("bbox", "segm"):
        cells = [f"{written[task][k]:.2f}" for k in ("AP", "AP50", "AP75", "AP50-base")]
        assert f"| {task} | " + " | ".join(cells) + " |" in text
    assert (out / "pr_curves_segm.png").is_file()
    assert "grid of images is not drawn" in text  # --gt-json without --image-root


def test_report_of_an_lvis_evaluation(tmp_path):
    gt = make_lvis_gt(seed=3, num_images=6)
    evaluator = LVISOpenVocabEvaluator(gt_json=write_json(tmp_path / "lvis.json", gt))
    metrics = evaluator.evaluate_results(make_predictions(gt, seed=4), ("bbox",))
    text = Path(write_detection_report(evaluator.last_snapshot, metrics, tmp_path / "r")).read_text(
        encoding="utf-8"
    )
    assert f"| bbox | {metrics['bbox']['AP']:.2f} |" in text and "APr" in text
    rows = _report_rows(text, "bbox")
    expected = evaluator.last_snapshot.tasks["bbox"].per_class_ap
    assert len(rows) == len(expected)


def test_grounding_evaluation_report_holds_its_metrics(tmp_path):
    """An evaluator without per-class results (grounding) gets a report of its metrics."""
    targets = [
        GroundingTarget(1, 10, "the red star", (0.0, 0.0, 10.0, 10.0), "base"),
        GroundingTarget(1, 11, "the moon", (50.0, 50.0, 20.0, 20.0), "novel"),
    ]
    evaluator = GroundingEvaluator(targets)
    boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    hit = Instances((100, 100), pred_boxes=boxes, scores=torch.tensor([0.9]))
    evaluator.process(
        [{"image_id": 1}],
        [{"expressions": [{"text": "the red star", "ann_id": 10, "instances": hit}]}],
    )
    metrics = evaluator.evaluate()
    path = write_evaluator_report(evaluator, metrics, tmp_path / "report", dataset_name="refs")
    text = Path(path).read_text(encoding="utf-8")
    assert "# Evaluation on refs" in text
    assert f"| Acc@0.5 | {metrics['grounding']['Acc@0.5']:.2f} |" in text
    assert "| Acc@0.5-novel | 0.00 |" in text and "| Acc@0.5-base | 100.00 |" in text
    with Image.open(tmp_path / "report" / "metrics_grounding.png") as img:
        img.load()
        assert img.size[0] == 900
