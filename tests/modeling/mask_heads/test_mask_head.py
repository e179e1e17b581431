"""Class-agnostic mask targets and loss."""

from __future__ import annotations

import torch

from ovvision.modeling.mask_heads import mask_loss, mask_targets


def test_mask_targets_crop_the_matched_mask_and_loss_is_zero_without_foreground():
    masks = torch.zeros(2, 20, 20, dtype=torch.bool)
    masks[0, 4:12, 2:10] = True
    masks[1, :, 10:] = True
    boxes = torch.tensor([[2.0, 4, 10, 12], [0, 0, 20, 20]])
    targets = mask_targets(masks, boxes, torch.tensor([0, 1]), 8)
    assert (targets[0] == 1).all()
    assert (targets[1][:, :4] == 0).all() and (targets[1][:, 4:] == 1).all()
    logits = torch.zeros(0, 8, 8, requires_grad=True)
    zero = mask_loss(logits, [torch.zeros(0, 4)], [masks], [torch.zeros(0, dtype=torch.int64)])
    assert zero.item() == 0.0
