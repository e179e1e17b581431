"""The masks OSM names, at the network's input resolution: ground-truth masks, boxes as masks,
and the bookkeeping of proposals (boxes, objectness, box-relative mask probabilities)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from ovvision.modeling.postprocessing import detector_postprocess
from ovvision.structures import Boxes, ImageList, Instances

__all__ = [
    "MaskProposals",
    "detector_mask_proposals",
    "ground_truth_proposals",
    "mask_boxes",
    "pad_masks",
    "region_mask",
    "resize_masks",
]


class MaskProposals:
    """The masks of one image at the input resolution (``masks`` ``BoolTensor[N, h, w]`` for
    the unpadded image), their boxes, objectness and (detector) box-relative mask probabilities."""

    def __init__(
        self,
        boxes: torch.Tensor,
        objectness: torch.Tensor,
        masks: torch.Tensor | None,
        mask_probs: torch.Tensor | None,
    ):
        self.boxes = boxes
        self.objectness = objectness
        self.masks = masks
        self.mask_probs = mask_probs


def ground_truth_proposals(
    item: dict[str, Any], size: tuple[int, int], index: int, device: torch.device
) -> MaskProposals:
    """The ground-truth masks of a batch item (``instances.gt_masks``), scaled to the input."""
    instances = item.get("instances")
    if instances is None or not instances.has("gt_masks"):
        raise ValueError(
            f"MODEL.OSM.PROPOSALS 'ground_truth': batch item {index} "
            f"('{item.get('file_name', '?')}') has no instances with gt_masks"
        )
    masks = torch.as_tensor(instances.gt_masks).to(device).bool()
    masks = resize_masks(masks, (int(size[0]), int(size[1])))
    boxes = mask_boxes(masks)
    return MaskProposals(boxes, torch.ones(len(masks), device=device), masks, None)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """XYXY boxes of ``BoolTensor[N, H, W]`` masks (zeros for an empty mask)."""
    if not len(masks):
        return masks.new_zeros(0, 4, dtype=torch.float32)
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    h, w = masks.shape[-2:]
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ar_h, h).min(dim=1).values
    y2 = torch.where(rows, ar_h + 1, 0).max(dim=1).values
    x1 = torch.where(cols, ar_w, w).min(dim=1).values
    x2 = torch.where(cols, ar_w + 1, 0).max(dim=1).values
    boxes = torch.stack([x1, y1, x2, y2], dim=1).float()
    return torch.where(masks.flatten(1).any(dim=1)[:, None], boxes, torch.zeros_like(boxes))


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(masks.shape[-2:]) == tuple(size) or not len(masks):
        return masks.reshape(len(masks), *size) if not len(masks) else masks
    return F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0].bool()


def pad_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``BoolTensor[N, h, w]`` padded with False to ``size`` (bottom and right)."""
    h, w = masks.shape[-2:]
    return F.pad(masks, (0, size[1] - w, 0, size[0] - h))


def region_mask(
    mask: torch.Tensor | None, box: torch.Tensor, size: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """A training region's mask at the padded input ``size``; the box itself when None."""
    if mask is None:
        ys = torch.arange(size[0], device=device)[:, None] + 0.5
        xs = torch.arange(size[1], device=device)[None] + 0.5
        return (xs >= box[0]) & (xs < box[2]) & (ys >= box[1]) & (ys < box[3])
    return pad_masks(torch.as_tensor(mask, device=device).bool(), size)


def detector_mask_proposals(
    detector: nn.Module,
    images: ImageList,
    features: dict[str, torch.Tensor],
    max_proposals: int,
    nms: float,
    mask_threshold: float,
) -> list[MaskProposals]:
    """An OV-RCNN's class-agnostic masks: its RPN proposals refined by its box head, NMS-ed at
    ``nms``, the first ``max_proposals`` by objectness, with their mask-head probabilities and
    the pasted masks (input resolution) per image."""
    proposals, logits, _ = detector.proposal_generator(images, features)
    heads = detector.roi_heads
    if heads.mask_head is None:
        raise ValueError("MODEL.OSM.PROPOSALS 'detector' needs a detector with masks (MASK_ON)")
    _, refined, kept = heads.refine_proposals(features, proposals, images.image_sizes)
    out = []
    for boxes, logit, ok in zip(refined, logits, kept):
        objectness = logit.float().sigmoid()[ok]
        keep = batched_nms(boxes, objectness, torch.zeros_like(objectness), nms)[:max_proposals]
        out.append(MaskProposals(boxes[keep], objectness[keep], None, None))
    pooled = heads.mask_pooler(features, [p.boxes for p in out], images.image_sizes)
    probs = heads.mask_head(pooled).sigmoid() if len(pooled) else pooled[:, 0]
    for p, chunk, size in zip(out, probs.split([len(p.boxes) for p in out]), images.image_sizes):
        p.mask_probs = chunk[:, 0] if chunk.ndim == 4 else chunk
        r = Instances(
            tuple(size),
            pred_boxes=Boxes(p.boxes),
            scores=p.objectness,
            pred_classes=torch.zeros(len(p.boxes), dtype=torch.int64, device=p.boxes.device),
            pred_mask_probs=p.mask_probs,
        )
        p.masks = detector_postprocess(r, int(size[0]), int(size[1]), mask_threshold).pred_masks
    return out
