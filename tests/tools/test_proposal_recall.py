"""tools/proposal_recall.py's recall computation on hand-made boxes with known answers."""

from __future__ import annotations

from pathlib import Path

import torch

from .._tools import load_tool

TOOL = Path(__file__).resolve().parents[2] / "tools" / "proposal_recall.py"


def _tool():
    return load_tool("proposal_recall")


def test_recall_of_the_first_k_proposals_per_split():
    proposals = [
        torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]]),
        torch.zeros(0, 4),  # an image without ground truth
        torch.zeros(0, 4),  # a novel box no proposal finds
    ]
    gt_boxes = [torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.zeros(0, 4),
                torch.tensor([[0.0, 0, 4, 4]])]  # fmt: skip
    gt_novel = [torch.tensor([False, True]), torch.zeros(0, dtype=torch.bool), torch.tensor([True])]
    recall = _tool().proposal_recall(proposals, gt_boxes, gt_novel, top=[1, 3])
    assert recall["1"] == {"base": 1.0, "novel": 0.0, "all": 0.3333, "num_base": 1, "num_novel": 2}
    assert recall["3"] == {"base": 1.0, "novel": 0.5, "all": 0.6667, "num_base": 1, "num_novel": 2}
    strict = _tool().proposal_recall(proposals, gt_boxes, gt_novel, top=[3], iou_threshold=0.95)
    assert strict["3"]["novel"] == 0.0  # the novel box is covered at IoU 0.91 only
    anything = _tool().proposal_recall(proposals, gt_boxes, gt_novel, top=[3], iou_threshold=0.0)
    assert anything["3"]["novel"] == 0.5  # the image without proposals finds nothing


def test_a_split_without_boxes_has_no_recall():
    recall = _tool().proposal_recall(
        [torch.tensor([[0.0, 0, 5, 5]])], [torch.tensor([[0.0, 0, 5, 5]])],
        [torch.tensor([False])], top=[10],
    )  # fmt: skip
    assert recall["10"]["base"] == 1.0 and recall["10"]["novel"] is None
