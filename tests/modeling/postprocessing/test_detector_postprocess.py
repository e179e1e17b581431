"""Detections rescaled to the original image, masks pasted."""

from __future__ import annotations

import torch

from ovvision.modeling.postprocessing import detector_postprocess, paste_masks
from ovvision.structures import Boxes, Instances


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


def test_paste_masks_follows_unrounded_boxes():
    probs = torch.zeros(2, 4, 4)
    probs[0, :, :2] = 1.0  # left half of the box
    probs[1] = 1.0
    boxes = torch.tensor([[4.0, 2.0, 12.0, 6.0], [0.4, 0.4, 3.6, 2.6]])
    masks = paste_masks(probs, boxes, (10, 16))
    ys, xs = torch.where(masks[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (2, 5, 4, 7)
    assert torch.where(masks[1])[1].unique().tolist() == [0, 1, 2, 3]
    assert paste_masks(torch.zeros(0, 4, 4), torch.zeros(0, 4), (5, 6)).shape == (0, 5, 6)
