"""NamingEvaluator: accuracy of generated names (singular/plural tolerant), OOV rate, base/novel
apart, its results file and confusion table."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ovvision.evaluation import EVALUATOR_REGISTRY, NamingEvaluator
from ovvision.evaluation.naming import NAMING_CONFUSION_FILE, NAMING_RESULTS_FILE
from ovvision.structures import ClassList, Instances

CLASSES = ClassList(
    ["circle", "cup", "star"], synonyms=[[], ["mug"], []], is_novel=[False, False, True]
)


def _pair(image_id: int, gt: list[int], names: list[str], index: list[int] | None = None):
    inputs = {"image_id": image_id, "instances": Instances((8, 8), gt_classes=torch.tensor(gt))}
    index = list(range(len(names))) if index is None else index
    outputs = {
        "instances": Instances(
            (8, 8),
            pred_names=list(names),
            proposal_index=torch.tensor(index, dtype=torch.int64),
            scores=torch.ones(len(names)),
        )
    }
    return inputs, outputs


def test_accuracy_oov_and_splits(tmp_path: Path):
    evaluator = NamingEvaluator(CLASSES, str(tmp_path), key="naming-any")
    evaluator.reset()
    for inputs, outputs in (
        _pair(1, [0, 1, 2], ["Circles", "mug", "circle"]),  # right, right (synonym), wrong
        _pair(2, [2, 1], ["stars", "teapot"]),  # right (plural), wrong out of vocabulary
        _pair(3, [0], ["circle", "star"], index=[0, 0]),  # two rows of one mask: the first counts
    ):
        evaluator.process([inputs], [outputs])
    metrics = evaluator.evaluate()["naming-any"]
    assert metrics["num_masks"] == 6 and metrics["num_base"] == 4 and metrics["num_novel"] == 2
    assert metrics["accuracy"] == 100.0 * 4 / 6
    assert metrics["accuracy-base"] == 100.0 * 3 / 4
    assert metrics["accuracy-novel"] == 50.0
    assert metrics["oov_rate"] == 100.0 / 6 and metrics["oov_rate-novel"] == 0.0
    saved = json.loads((tmp_path / NAMING_RESULTS_FILE).read_text())
    assert saved["metrics"]["accuracy"] == metrics["accuracy"]
    assert saved["confusions"] == {"cup": [["teapot", 1]], "star": [["circle", 1]]}
    assert [(r["image_id"], r["mask"]) for r in saved["names"]] == [
        (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (3, 0)
    ]  # fmt: skip
    table = (tmp_path / NAMING_CONFUSION_FILE).read_text()
    assert "| star | novel | 2 | 50.0 | circle (1) |" in table


def test_a_mask_without_a_name_is_wrong_and_reruns_write_the_same_bytes(tmp_path: Path):
    contents = []
    for _ in range(2):
        evaluator = NamingEvaluator(CLASSES, str(tmp_path))
        inputs, outputs = _pair(5, [0, 1], ["circle"])  # the second mask got no row
        evaluator.process([inputs], [outputs])
        metrics = evaluator.evaluate()["naming"]
        contents.append((tmp_path / NAMING_RESULTS_FILE).read_bytes())
    assert metrics["accuracy"] == 50.0 and metrics["oov_rate"] == 50.0
    assert contents[0] == contents[1]


def test_empty_evaluation_is_defined_and_the_type_is_registered():
    metrics = NamingEvaluator(CLASSES).evaluate()["naming"]
    assert metrics["num_masks"] == 0 and metrics["accuracy"] != metrics["accuracy"]  # NaN
    assert "naming" in EVALUATOR_REGISTRY
