"""A class-agnostic mask head: one mask per region, whatever its class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from ovvision.config import CfgNode, configurable
from ovvision.ops import roi_align
from ovvision.utils.registry import Registry

ROI_MASK_HEAD_REGISTRY = Registry("ROI_MASK_HEAD")
ROI_MASK_HEAD_REGISTRY.__doc__ = """Mask heads: ``MODEL.ROI_MASK_HEAD.NAME`` names a class
built with ``cls(cfg, in_channels=...)``."""


@ROI_MASK_HEAD_REGISTRY.register()
class ClassAgnosticMaskHead(nn.Module):
    """torchvision's Mask R-CNN convolutions and predictor with a single output channel.

    Class-agnostic masks transfer to classes never seen in training: the head learns
    "the object in this box", not "the cat in this box".

    Args:
        in_channels: channels of the pooled ROI features.
        conv_dims: output channels of each 3x3 convolution.
    """

    @configurable
    def __init__(self, *, in_channels: int, conv_dims: list[int]):
        super().__init__()
        self.convs = MaskRCNNHeads(in_channels, conv_dims, dilation=1)
        self.predictor = MaskRCNNPredictor(conv_dims[-1], conv_dims[-1], num_classes=1)

    @classmethod
    def from_config(cls, cfg: CfgNode, in_channels: int) -> dict:
        mcfg = cfg.MODEL.ROI_MASK_HEAD
        return {"in_channels": in_channels, "conv_dims": [mcfg.CONV_DIM] * mcfg.NUM_CONV}

    def forward(self, roi_features: torch.Tensor) -> torch.Tensor:
        """``Tensor[K, C, S, S]`` -> mask logits ``Tensor[K, 2S, 2S]``."""
        return self.predictor(self.convs(roi_features))[:, 0]


def build_mask_head(cfg: CfgNode, in_channels: int) -> nn.Module:
    """Build the mask head named by ``MODEL.ROI_MASK_HEAD.NAME``."""
    return ROI_MASK_HEAD_REGISTRY.get(cfg.MODEL.ROI_MASK_HEAD.NAME)(cfg, in_channels=in_channels)


def mask_loss(
    mask_logits: torch.Tensor,
    boxes: list[torch.Tensor],
    gt_masks: list[torch.Tensor],
    matched_gt: list[torch.Tensor],
) -> torch.Tensor:
    """Mean per-pixel binary cross-entropy between predicted masks and ground truth.

    Exactly 0 when there is no foreground region in the batch.

    Args:
        mask_logits: ``Tensor[P, M, M]`` logits of the foreground regions of all images.
        boxes: per image ``Tensor[P_i, 4]`` foreground region boxes.
        gt_masks: per image ``BoolTensor[N_i, H, W]`` ground-truth masks.
        matched_gt: per image ``LongTensor[P_i]`` index of each region's ground truth.
    """
    if mask_logits.shape[0] == 0:
        return mask_logits.sum()
    targets = torch.cat(
        [
            mask_targets(m, b, idx, mask_logits.shape[-1])
            for m, b, idx in zip(gt_masks, boxes, matched_gt)
        ]
    )
    return F.binary_cross_entropy_with_logits(mask_logits, targets.to(mask_logits.dtype))


def mask_targets(
    gt_masks: torch.Tensor, boxes: torch.Tensor, matched_gt: torch.Tensor, size: int
) -> torch.Tensor:
    """``Tensor[P, size, size]`` of 0/1: each region's ground-truth mask cropped to its box.

    Args:
        gt_masks: ``BoolTensor[N, H, W]``.
        boxes: ``Tensor[P, 4]`` region boxes.
        matched_gt: ``LongTensor[P]`` indices into ``gt_masks``.
        size: output side.
    """
    rois = torch.cat([matched_gt[:, None].to(boxes.dtype), boxes], dim=1)
    masks = gt_masks[:, None].to(boxes.dtype)
    crops = roi_align(masks, rois, size, 1.0, sampling_ratio=0, aligned=True)
    return (crops[:, 0] >= 0.5).to(boxes.dtype)
