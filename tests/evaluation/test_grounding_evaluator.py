"""GroundingEvaluator and grounding_metrics against a hand-counted toy case."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ovvision.evaluation import (
    GROUNDING_RESULTS_FILE,
    GroundingEvaluator,
    grounding_metrics,
    grounding_targets,
)
from ovvision.evaluation.grounding import GroundingTarget
from ovvision.structures import Boxes, Instances

MISS = [200.0, 200.0, 5.0, 5.0]
# Two images, several expressions each (one ann referred to twice), every size bucket.
TARGETS = [
    GroundingTarget(1, 10, "the left one", (0.0, 0.0, 10.0, 10.0), "base"),  # small
    GroundingTarget(1, 11, "the right one", (20.0, 0.0, 10.0, 10.0), "base"),  # small
    GroundingTarget(1, 11, "the square", (20.0, 0.0, 10.0, 10.0), "base"),  # small
    GroundingTarget(2, 20, "star", (0.0, 0.0, 40.0, 40.0), "novel"),  # medium
    GroundingTarget(2, 21, "heart", (0.0, 0.0, 100.0, 100.0), "novel"),  # large
    GroundingTarget(2, 22, "ring", (50.0, 50.0, 40.0, 40.0), "base"),  # medium
]
RESULTS = [
    {"image_id": 1, "ann_id": 10, "text": "the left one", "bbox": [[0, 0, 10, 5]]},  # IoU = 0.5
    {"image_id": 1, "ann_id": 11, "text": "the right one",
     "bbox": [[0, 0, 10, 10], [20, 0, 10, 10]]},
    {"image_id": 1, "ann_id": 11, "text": "the square", "bbox": [[20, 0, 10, 4.9]]},  # IoU 0.49
    {"image_id": 2, "ann_id": 20, "text": "star", "bbox": [[0, 0, 40, 40]]},
    # "heart" has no result
    {"image_id": 2, "ann_id": 22, "text": "ring", "bbox": [MISS] * 5 + [[50, 50, 40, 40]]},
    {"image_id": 3, "ann_id": 30, "text": "not in the ground truth", "bbox": [[0, 0, 1, 1]]},
]  # fmt: skip


def test_metrics_match_the_hand_count():
    m = grounding_metrics(TARGETS, RESULTS)
    # top-1 hits: "the left one" (IoU exactly 0.5 counts) and "star"
    assert m["Acc@0.5"] == pytest.approx(100 * 2 / 6)
    assert m["Acc@0.5-base"] == pytest.approx(100 * 1 / 4)
    assert m["Acc@0.5-novel"] == pytest.approx(100 * 1 / 2)
    assert m["Acc@0.5-small"] == pytest.approx(100 * 1 / 3)
    assert m["Acc@0.5-medium"] == pytest.approx(100 * 1 / 2)
    assert m["Acc@0.5-large"] == 0.0
    assert m["R@1"] == pytest.approx(100 * 2 / 6)
    assert m["R@5"] == pytest.approx(100 * 3 / 6)  # + "the right one" at rank 2
    assert m["R@10"] == pytest.approx(100 * 4 / 6)  # + "ring" at rank 6
    assert (m["num_expressions"], m["num_base"], m["num_novel"]) == (6, 4, 2)
    assert m["num_without_prediction"] == 1 and m["num_unmatched_results"] == 1


def test_empty_groups_are_nan_not_zero():
    m = grounding_metrics(TARGETS[:1], RESULTS[:1])
    assert m["Acc@0.5"] == 100.0
    assert math.isnan(m["Acc@0.5-novel"]) and math.isnan(m["Acc@0.5-large"])


def _outputs(results):
    by_image: dict[int, list] = {}
    for r in results:
        xywh = torch.tensor(r["bbox"], dtype=torch.float32)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        scores = torch.linspace(1.0, 0.5, len(xyxy))
        inst = Instances((128, 128), pred_boxes=Boxes(xyxy), scores=scores)
        by_image.setdefault(r["image_id"], []).append(
            {"text": r["text"], "ann_id": r["ann_id"], "instances": inst}
        )
    return [({"image_id": i}, {"expressions": e}) for i, e in sorted(by_image.items())]


def test_evaluator_writes_sorted_results_and_scores_them(tmp_path):
    evaluator = GroundingEvaluator(TARGETS, output_dir=str(tmp_path))
    pairs = _outputs(RESULTS)
    evaluator.reset()
    for item, output in reversed(pairs):  # any order gives the same file
        evaluator.process([item], [output])
    metrics = evaluator.evaluate()["grounding"]
    assert metrics == pytest.approx(grounding_metrics(TARGETS, RESULTS), nan_ok=True)
    first = (tmp_path / GROUNDING_RESULTS_FILE).read_bytes()
    saved = json.loads(first)
    assert [(r["image_id"], r["ann_id"], r["text"]) for r in saved] == sorted(
        (r["image_id"], r["ann_id"], r["text"]) for r in RESULTS
    )
    evaluator.reset()
    for item, output in pairs:
        evaluator.process([item], [output])
    evaluator.evaluate()
    assert (tmp_path / GROUNDING_RESULTS_FILE).read_bytes() == first


def test_targets_take_the_split_from_class_names():
    dicts = [{"image_id": 5, "expressions": [
        {"text": "a star", "ann_id": 1, "bbox": [0, 0, 4, 4], "category_id": 1},
        {"text": "a ring", "ann_id": 2, "bbox": [4, 4, 4, 4], "category_id": 0},
    ]}]  # fmt: skip
    targets = grounding_targets(dicts, ["ring", "star"], ["star"])
    assert [(t.text, t.split) for t in targets] == [("a star", "novel"), ("a ring", "base")]
