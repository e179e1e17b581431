"""Detections rescaled to the original image, masks pasted."""

from __future__ import annotations

import torch

from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.structures import Boxes, Instances
from tests.ops.helpers import grid_sample_paste


def test_detector_postprocess_rescales_boxes_and_pastes_masks():
    result = Instances(
        (50, 100),
        pred_boxes=Boxes([[10.0, 10, 30, 20]]),
        scores=torch.tensor([0.9]),
        pred_classes=torch.tensor([2]),
        pred_mask_probs=torch.ones(1, 28, 28),
    )
    out = detector_postprocess(result, 100, 200)
    assert out.image_size == (100, 200)
    assert out.pred_boxes.tensor.tolist() == [[20.0, 20.0, 60.0, 40.0]]
    assert out.pred_masks.shape == (1, 100, 200) and out.pred_masks.dtype == torch.bool
    ys, xs = torch.where(out.pred_masks[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (20, 39, 20, 59)


def test_masks_equal_the_formergrid_sample_paste_after_rescaling():
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(40, 2, generator=g) * torch.tensor([90.0, 40.0])
    boxes = torch.cat([boxes, boxes + torch.rand(40, 2, generator=g) * 30 + 0.5], dim=1)
    probs = torch.rand(40, 28, 28, generator=g)
    result = Instances(
        (50, 100),
        pred_boxes=Boxes(boxes),
        scores=torch.rand(40, generator=g),
        pred_classes=torch.zeros(40, dtype=torch.long),
        pred_mask_probs=probs,
    )
    out = detector_postprocess(result, 75, 130)
    expected = grid_sample_paste(probs, out.pred_boxes.tensor, (75, 130), threshold=0.5)
    assert out.pred_masks.shape == (40, 75, 130) and out.pred_masks.dtype == torch.bool
    assert torch.equal(out.pred_masks, expected)
    empty = Instances(
        (50, 100),
        pred_boxes=Boxes(torch.zeros(0, 4)),
        scores=torch.zeros(0),
        pred_classes=torch.zeros(0, dtype=torch.long),
        pred_mask_probs=torch.zeros(0, 28, 28),
    )
    assert detector_postprocess(empty, 5, 6).pred_masks.shape == (0, 5, 6)
